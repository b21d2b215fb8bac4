"""`chronic demo` on a dev server with the product's workers: every planned branch happens.

Windows are a few seconds, so the whole batch (a lapse included) finishes in well under a
minute of real time. Sanmenxia's experts, Wuhan's office and hospitals on both tracks, and
Jilin's assessment hospitals and remote applicants each get a run of their own.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from sqlmodel import col, select
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from chronic.cli import app
from chronic.db import Database
from chronic.demo import DemoOptions, Scenario, plan_batch, plan_scenarios, run_demo
from chronic.demo.report import DemoReport
from chronic.settings import Settings
from models.domain import (
    ApplicationStatus,
    FilingStatus,
    OfferStatus,
    ReviewDecision,
    ReviewStage,
)
from models.policy import load_policy
from models.tables import Application, AuditEvent, FilingRecord, Hospital, InsuredPerson, SmsOutbox
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
    # Experts who think for minutes and a run cut at 4 s: every application is submitted
    # (however slow the machine) and the reviewed ones are still open when the second starts.
    cut_short = replace(
        FAST,
        accept_window=timedelta(minutes=10),
        think_seconds=(120, 120),
        timeout=4,
        seed=11,
    )
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
            assert len(first.submitted) == 4
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


# ---- Wuhan and Jilin ------------------------------------------------------------------------

WUHAN, JILIN = load_policy("wuhan"), load_policy("jilin")


def test_each_region_plans_the_branches_its_process_has() -> None:
    """Which scenarios a batch holds follows from the step kinds of the region's tracks."""
    assert plan_scenarios(8, load_policy("sanmenxia")) == plan_scenarios(8)
    assert plan_scenarios(8, WUHAN) == [
        Scenario.APPROVE,
        Scenario.REJECT,
        Scenario.RETURN,
        Scenario.REFUSAL,
        Scenario.DESK,
        Scenario.EXAMINATION,
        Scenario.OFFICE_RETURN,
        Scenario.OFFICE_REFUSES,
    ]
    assert plan_scenarios(7, JILIN) == [
        Scenario.APPROVE,
        Scenario.REJECT,
        Scenario.RETURN,
        Scenario.REFUSAL,
        Scenario.EXAMINATION,
        Scenario.FILED,
        Scenario.NOT_FILED,
    ]
    # No expert review there: no declines, lapses or third experts, however big the batch.
    for policy in (WUHAN, JILIN):
        assert not {Scenario.DECLINE, Scenario.LAPSE, Scenario.ARBITRATION} & set(
            plan_scenarios(30, policy)
        )


async def test_wuhan_plans_track_a_at_a_grade_3a_hospital_and_track_b_elsewhere(
    seeded_database: Database,
) -> None:
    plans, skipped = await plan_batch(
        seeded_database,
        WUHAN,
        plan_scenarios(8, WUHAN),
        rng=random.Random(3),
        today=date.today(),
    )
    assert not skipped and len(plans) == 8
    async with seeded_database.session() as session:
        hospitals = {h.code: h for h in await session.exec(select(Hospital))}
    by = {p.scenario: p for p in plans}
    # Track A: a track-A disease diagnosed at a 三甲 hospital, whose desk applies.
    desk = by[Scenario.DESK]
    diagnosing = hospitals[desk.form.diagnosing_hospital]
    assert desk.track == "a" and desk.disease.track_a
    assert (diagnosing.level, diagnosing.grade, diagnosing.region) == (3, "A", "wuhan")
    assert desk.form.submitted_by == "hospital" and desk.assessor is None
    # Track B: the office names an assessment hospital (a 三甲 one, not the diagnosing one).
    exam = by[Scenario.EXAMINATION]
    assert exam.track == "b" and exam.assessor is not None
    assert exam.assessor != exam.form.diagnosing_hospital
    assert hospitals[exam.assessor].level == 3
    assert {p.track for p in plans} == {"a", "b"}
    assert by[Scenario.APPROVE].track == "b"  # decided from the records on track B
    # The intake return's first materials come from a level-1 hospital; refusal: suspended.
    assert {hospitals[m.hospital].level for m in by[Scenario.RETURN].form.materials} == {1}
    assert by[Scenario.REFUSAL].form.applicant.id_number == "420106198511203028"
    assert all(p.form.region == "wuhan" and not p.form.out_of_area for p in plans)


async def test_jilin_plans_local_assessments_and_remote_applicants(
    seeded_database: Database,
) -> None:
    plans, skipped = await plan_batch(
        seeded_database,
        JILIN,
        plan_scenarios(7, JILIN),
        rng=random.Random(3),
        today=date.today(),
    )
    assert not skipped and len(plans) == 7
    by = {p.scenario: p for p in plans}
    for scenario in (Scenario.APPROVE, Scenario.REJECT, Scenario.EXAMINATION):
        local = by[scenario]
        assert local.track == "local" and not local.form.out_of_area
        assert local.assessor in JILIN.assessment_hospitals
    filed, not_filed = by[Scenario.FILED], by[Scenario.NOT_FILED]
    for remote in (filed, not_filed):
        assert remote.track == "out_of_area" and remote.form.out_of_area
        assert remote.form.diagnosing_hospital == remote.assessor == "HN01"  # where they live
    assert not_filed.filing is None
    assert filed.filing is not None and filed.filing.filing_type.long_term
    assert filed.filing.insured_place == "220000" and filed.filing.destination.city == "三亚市"
    assert filed.filing.applicant.id_number == filed.form.applicant.id_number


FAST_REGION = replace(FAST, timeout=120, seed=5)


async def _run_region(
    region: str, dev_server: WorkflowEnvironment, db: Database, tmp_path: Path
) -> tuple[DemoReport, str]:
    settings = Settings(state_dir=tmp_path)
    out = io.StringIO()
    async with running_workers(dev_server.client, db, settings):
        report = await run_demo(
            settings,
            ui_url="http://localhost:8233",
            region=region,
            options=FAST_REGION,
            client=dev_server.client,
            db=db,
            console=Console(file=out, width=200),
        )
    return report, out.getvalue()


async def _no_personal_data(db: Database, report: DemoReport, text: str) -> None:
    async with db.session() as session:
        people = list(
            await session.exec(
                select(InsuredPerson.name, InsuredPerson.id_number, InsuredPerson.mobile)
                .join(Application, col(Application.person_id) == col(InsuredPerson.id))
                .where(col(Application.id).in_([a.application_id for a in report.submitted]))
            )
        )
    assert len(people) == len(report.submitted)
    for name, id_number, mobile in people:
        assert name not in text and id_number not in text and mobile[3:] not in text


async def test_wuhan_demo_runs_both_tracks_to_their_planned_ends(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> None:
    report, text = await _run_region("wuhan", dev_server, seeded_database, tmp_path)

    assert not report.timed_out and not report.skipped, text
    assert len(report.submitted) == 8 and report.all_as_planned, text
    by = {a.scenario: a for a in report.applications}
    # Track A: the office designated the diagnosing hospital, its opinion, the office confirmed.
    desk = by[Scenario.DESK].progress
    assert desk is not None and desk.track == "a"
    assert [d.stage for d in desk.decisions] == [
        ReviewStage.HOSPITAL_ASSESSMENT,
        ReviewStage.OFFICE_CONFIRMATION,
    ]
    assert desk.decisions[0].expert == f"hospital:{desk.assessment_hospital}"
    # Track B with an on-site examination (the applicant told by SMS); an office refusal.
    exam = by[Scenario.EXAMINATION].progress
    assert exam is not None and exam.track == "b" and exam.examination is not None
    refused = by[Scenario.OFFICE_REFUSES].progress
    assert refused is not None and refused.status == ApplicationStatus.REJECTED
    assert refused.decisions[0].decision == ReviewDecision.APPROVE  # the hospital approved
    assert refused.decisions[-1].decision == ReviewDecision.REJECT  # the office refused
    # The office return: resubmitted, accepted on the second round.
    returned = by[Scenario.OFFICE_RETURN].progress
    assert returned is not None and returned.materials_round == 2
    assert report.by_track.keys() == {"a", "b"}
    assert report.sms["examination_scheduled"] == 1
    assert report.sms["approved"] == 5 and report.sms["returned"] == 2, text
    assert report.sms_not_sent == 0
    # The clerk acted as a recorded actor (clerk:<operator>), as `chronic office` does.
    async with seeded_database.session() as session:
        actors = set(
            await session.exec(
                select(AuditEvent.actor).where(
                    col(AuditEvent.application_id) == by[Scenario.DESK].application_id
                )
            )
        )
    assert any(a.startswith("clerk:") for a in actors)
    assert "Applications · wuhan" in text and "track a" in text and "track b" in text
    await _no_personal_data(seeded_database, report, text)


async def test_jilin_demo_files_remote_applicants_first_and_refuses_those_without(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> None:
    report, text = await _run_region("jilin", dev_server, seeded_database, tmp_path)

    assert not report.timed_out and not report.skipped, text
    assert len(report.submitted) == 7 and report.all_as_planned, text
    by = {a.scenario: a for a in report.applications}
    local = by[Scenario.APPROVE].progress
    assert local is not None and local.track == "local"
    assert local.benefit is not None and local.benefit.valid_to is None  # effective, long-term
    assert [d.stage for d in local.decisions] == [ReviewStage.HOSPITAL_ASSESSMENT]
    filed = by[Scenario.FILED]
    assert filed.progress is not None and filed.progress.track == "out_of_area"
    assert filed.progress.status == ApplicationStatus.APPROVED and filed.filing_id
    not_filed = by[Scenario.NOT_FILED].progress
    assert not_filed is not None and not_filed.status == ApplicationStatus.REFUSED
    assert "long-term out-of-area filing" in not_filed.reasons[0]
    async with seeded_database.session() as session:
        filing = await session.get(FilingRecord, filed.filing_id)
    assert filing is not None and filing.status == FilingStatus.FILED
    assert report.sms["filing_filed"] == 1 and report.sms["examination_scheduled"] == 1
    assert report.sms["approved"] == 4 and report.sms_not_sent == 0
    await _no_personal_data(seeded_database, report, text)


def test_the_cli_names_the_regions_it_knows() -> None:
    result = CliRunner().invoke(app, ["demo", "--region", "paris"])

    assert result.exit_code == 2
    assert "no policy for 'paris'" in result.output and "wuhan" in result.output
