"""`chronic demo` on a dev server with the product's workers: every planned branch happens.

Windows are a few seconds, so the whole batch (a lapse included) finishes in well under a
minute of real time.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from sqlmodel import col, select
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from chronic.db import Database
from chronic.demo import DemoOptions, Scenario, plan_scenarios, run_demo
from chronic.settings import Settings
from models.domain import ApplicationStatus, OfferStatus, ReviewDecision, ReviewStage
from models.tables import Application, InsuredPerson, SmsOutbox
from tests import support
from tests.fixtures.temporal import running_workers

FAST = DemoOptions(
    accept_window=timedelta(seconds=4),
    decision_window=timedelta(seconds=15),
    resubmission_window=timedelta(seconds=15),
    no_expert_retry_interval=timedelta(seconds=2),
    think_seconds=(0.1, 0.4),
    submit_interval=0.05,
    poll_interval=0.2,
    timeout=90,
    seed=7,
    status_every=5,
)


def test_a_batch_of_eight_covers_every_branch_once() -> None:
    assert sorted(plan_scenarios(8)) == sorted(
        [
            Scenario.APPROVE,
            Scenario.DECLINE,
            Scenario.LAPSE,
            Scenario.REJECT,
            Scenario.MATERIALS,
            Scenario.RETURN,
            Scenario.REFUSAL,
            Scenario.ARBITRATION,
        ]
    )
    default = Counter(plan_scenarios(24))
    assert sum(default.values()) == 24
    assert default[Scenario.APPROVE] >= 10
    assert default[Scenario.DECLINE] == default[Scenario.LAPSE] == default[Scenario.REJECT] == 3
    assert default[Scenario.REFUSAL] == default[Scenario.ARBITRATION] == 1


async def test_demo_runs_every_branch_to_its_planned_end(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path)
    out = io.StringIO()
    async with running_workers(dev_server.client, seeded_database, settings):
        report = await run_demo(
            settings,
            ui_url="http://localhost:8233",
            count=8,
            options=FAST,
            client=dev_server.client,
            db=seeded_database,
            console=Console(file=out, width=160),
        )

    # Every application reached a final status, the one its scenario was planned for.
    assert not report.timed_out and not report.skipped
    assert len(report.submitted) == 8 and report.all_finished
    outcomes = {a.scenario: a.status for a in report.applications}
    assert outcomes == {s: s.expected for s in plan_scenarios(8)}
    assert outcomes[Scenario.REJECT] == ApplicationStatus.REJECTED
    assert outcomes[Scenario.REFUSAL] == ApplicationStatus.REFUSED
    assert report.all_as_planned

    by = {a.scenario: a for a in report.applications}
    # A decline (with its reason) and a lapse, each followed by another expert.
    declined = by[Scenario.DECLINE].progress
    assert declined is not None and declined.offers[0].status == OfferStatus.DECLINED
    assert declined.offers[0].reason and declined.offers[1].expert != declined.offers[0].expert
    lapsed = by[Scenario.LAPSE].progress
    assert lapsed is not None and lapsed.offers[0].status == OfferStatus.LAPSED
    assert report.offers_with(OfferStatus.DECLINED) >= 1
    assert report.offers_with(OfferStatus.LAPSED) >= 1
    # Disagreement → a third expert; materials → the same reviewer decides after round 2.
    arbitration = by[Scenario.ARBITRATION].progress
    assert arbitration is not None
    assert [d.stage for d in arbitration.decisions] == [
        ReviewStage.INITIAL_REVIEW,
        ReviewStage.RE_REVIEW,
        ReviewStage.ARBITRATION,
    ]
    assert len({d.expert for d in arbitration.decisions}) == 3
    materials = by[Scenario.MATERIALS].progress
    assert materials is not None and materials.materials_round == 2
    assert len(materials.offers) == len(materials.decisions)  # nobody new was drawn
    returned = by[Scenario.RETURN].progress
    assert returned is not None and returned.materials_round == 2
    rejected = by[Scenario.REJECT].progress
    assert rejected is not None
    assert all(d.decision == ReviewDecision.REJECT and d.opinion for d in rejected.decisions)

    # The approval SMS exists once per approved application, and nowhere else.
    approved = {a.application_id for a in report.applications if a.status == "approved"}
    async with seeded_database.session() as session:
        rows = list(
            await session.exec(
                select(SmsOutbox.application_id).where(col(SmsOutbox.template) == "approved")
            )
        )
        people = list(
            await session.exec(
                select(InsuredPerson.name, InsuredPerson.id_number)
                .join(Application, col(Application.person_id) == col(InsuredPerson.id))
                .where(col(Application.id).in_([a.application_id for a in report.submitted]))
            )
        )
    assert Counter(rows) == Counter(approved) and len(approved) == 6
    assert report.sms["approved"] == 6 and report.sms_not_sent == 0

    # The summary: links to the UI, and no personal data anywhere in the output.
    text = out.getvalue()
    assert "http://localhost:8233/namespaces/default/workflows" in text
    assert "?query=ChronicStatus%3D%22approved%22" in text
    assert len(people) == 8
    for name, id_number in people:
        assert name not in text and id_number not in text
    assert support.LIU_SUSPENDED not in text


async def test_a_second_run_while_the_first_is_open_picks_other_people(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> None:
    """The same seed twice: the people of the first, still open, batch are not chosen again."""
    settings = Settings(state_dir=tmp_path)
    quiet = Console(file=io.StringIO(), width=160)
    cut_short = replace(FAST, timeout=0.5, seed=11)
    async with running_workers(dev_server.client, seeded_database, settings):
        first = await run_demo(
            settings,
            ui_url="http://ui",
            count=4,
            options=cut_short,
            client=dev_server.client,
            db=seeded_database,
            console=quiet,
        )
        try:
            assert first.timed_out and not first.all_finished
            second = await run_demo(
                settings,
                ui_url="http://ui",
                count=4,
                options=replace(FAST, seed=11),
                client=dev_server.client,
                db=seeded_database,
                console=quiet,
            )
        finally:
            for application in first.submitted:
                assert application.application_id is not None
                handle = dev_server.client.get_workflow_handle(application.application_id)
                with contextlib.suppress(RPCError):
                    await handle.terminate("test over")
    assert len(second.submitted) == 4 and second.all_finished and second.all_as_planned
    async with seeded_database.session() as session:
        persons = dict((await session.exec(select(Application.id, Application.person_id))).all())
    assert {persons.get(a.application_id or "") for a in first.submitted}.isdisjoint(
        persons.get(a.application_id or "") for a in second.submitted
    )
