"""`chronic demo`: a batch of applications through the running stack, with simulated experts.

The demo plays the people around the system, never the system itself. It submits a batch of
varied applications through :func:`chronic.submission.submit` (the clerk's path), under a policy
whose windows are shortened from hours to seconds, and then, for each application, acts as the
experts and the clerk would: reading the current offer from the ``progress`` query and answering
through the same Temporal Updates the CLI sends (accept, decline, decide, request materials,
resubmit), after a short human-like pause. Everything else — intake, random draws, lapses,
reassignment, arbitration, SMS — is the product's own workflow and workers.

Every branch of seed 002 is planned into the batch (see :class:`Scenario`): plain approvals,
a decline and a lapse that are reassigned, rejections, a disagreement settled by a third
expert, a materials request answered by a resubmission, an intake return, and a refusal.

People are picked from the seeded register: insured normally, without an open application
and without any application for the chosen disease this year (so the one-open-application rule
and the yearly quota never get in the way, and the demo can run again on the same stack). The
live view and the summary show application IDs and codes only — never names, ID numbers or
mobile numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from chronic.db import Database
from chronic.seed import load_reference
from chronic.seed.world import is_bench_name
from chronic.settings import Settings
from chronic.submission import SubmissionRefused, submit
from models import search_attributes as sa_keys
from models.application import ApplicationForm
from models.domain import (
    ApplicationStatus,
    ExpertStatus,
    InsuranceStatus,
    InsuranceType,
    MaterialKind,
    OfferStatus,
    ReviewDecision,
    ReviewStage,
)
from models.messages import (
    AcceptOffer,
    Decide,
    DeclineOffer,
    MaterialItem,
    Progress,
    RequestMaterials,
    Resubmission,
)
from models.policy import Disease, PolicyProfile
from models.tables import Application, Expert, Hospital, InsuredPerson, SmsOutbox
from workflows.application import ApplicationWorkflow

Handle = WorkflowHandle[ApplicationWorkflow, Progress]

REFUSAL_ID_NUMBER = "410102198406180357"
"""刘芳 of ``chronic/seed/reference.toml``: insurance suspended, so intake refuses her."""
REFUSAL_DISEASE = "COPD"

_FINAL = frozenset(
    {
        ApplicationStatus.APPROVED,
        ApplicationStatus.REJECTED,
        ApplicationStatus.REFUSED,
        ApplicationStatus.CLOSED,
    }
)


class Scenario(StrEnum):
    """What the simulated people do with one application, and so which branch it takes."""

    APPROVE = "approve"  # every expert accepts and approves
    DECLINE = "decline"  # the first expert declines with a reason; the next one accepts
    LAPSE = "lapse"  # nobody answers the first offer within the window; reassigned
    REJECT = "reject"  # accepted and rejected with an opinion
    ARBITRATION = "arbitration"  # initial review approves, re-review rejects: a third expert
    MATERIALS = "materials"  # the reviewer asks for more; the clerk resubmits; same reviewer
    RETURN = "return"  # materials from a level-1 hospital: returned, resubmitted good ones
    RETURN_OLD = "return_old"  # materials older than the limit: returned, resubmitted
    REFUSAL = "refusal"  # insurance suspended: refused at intake

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def expected(self) -> ApplicationStatus:
        """The final status this scenario should end in."""
        if self is Scenario.REJECT:
            return ApplicationStatus.REJECTED
        if self is Scenario.REFUSAL:
            return ApplicationStatus.REFUSED
        return ApplicationStatus.APPROVED


_LABELS = {
    Scenario.APPROVE: "approve",
    Scenario.DECLINE: "decline → next",
    Scenario.LAPSE: "lapse → reassign",
    Scenario.REJECT: "reject",
    Scenario.ARBITRATION: "disagree → 3rd",
    Scenario.MATERIALS: "materials → resubmit",
    Scenario.RETURN: "return (level 1)",
    Scenario.RETURN_OLD: "return (old)",
    Scenario.REFUSAL: "refusal",
}

# Priority when the batch is small: one of each branch first.
_ONE_OF_EACH = (
    Scenario.APPROVE,
    Scenario.DECLINE,
    Scenario.LAPSE,
    Scenario.REJECT,
    Scenario.MATERIALS,
    Scenario.RETURN,
    Scenario.REFUSAL,
    Scenario.ARBITRATION,
)


def plan_scenarios(count: int) -> list[Scenario]:
    """The scenarios of a batch of ``count``: every branch once, then mostly approvals.

    One in eight declines, lapses and rejections each; a second return (old materials) from 16
    on. Below 8 the first ``count`` of :data:`_ONE_OF_EACH` are taken.
    """
    if count < 1:
        raise ValueError("a demo needs at least one application")
    if count <= len(_ONE_OF_EACH):
        return list(_ONE_OF_EACH[:count])
    scenarios = list(_ONE_OF_EACH)
    share = max(1, round(count / 8))
    for scenario in (Scenario.DECLINE, Scenario.LAPSE, Scenario.REJECT):
        scenarios += [scenario] * (share - 1)
    if count >= 16:
        scenarios.append(Scenario.RETURN_OLD)
    scenarios = scenarios[:count]
    scenarios += [Scenario.APPROVE] * (count - len(scenarios))
    return scenarios


# ---- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOptions:
    """How fast the demo world turns. Defaults suit a person watching; tests go faster."""

    accept_window: timedelta = timedelta(seconds=20)
    decision_window: timedelta = timedelta(seconds=40)
    resubmission_window: timedelta = timedelta(seconds=60)
    no_expert_retry_interval: timedelta = timedelta(seconds=10)
    timeout: float = 600.0
    """Seconds to wait for every application to finish before giving up."""
    think_seconds: tuple[float, float] = (1.5, 5.0)
    """Pause of a simulated person before each action (capped well inside the windows)."""
    submit_interval: float = 0.25
    """Seconds between two submissions (the batch arrives like a morning at the desk)."""
    poll_interval: float = 0.5
    status_every: float = 10.0
    """Without a terminal: seconds between two status lines (instead of the live table)."""
    seed: int | None = None
    """Seed of the demo's choices (people, diseases, pauses); None = a new batch each run."""
    live: bool | None = None
    """Live table; None = when the console is a terminal."""

    def policy(self, settings: Settings, region: str | None = None) -> PolicyProfile:
        """The region's policy (with CHRONIC_POLICY_WINDOWS) and the demo's windows on top."""
        return settings.policy(region or settings.region).with_windows(
            accept_window=self.accept_window,
            decision_window=self.decision_window,
            resubmission_window=self.resubmission_window,
            no_expert_retry_interval=self.no_expert_retry_interval,
        )

    def think_range(self) -> tuple[float, float]:
        """The pause range, capped at a third of the shortest window an action must meet."""
        shortest = min(self.accept_window, self.decision_window, self.resubmission_window)
        cap = shortest.total_seconds() / 3
        low, high = self.think_seconds
        return min(low, cap), min(high, cap)


# ---- the plan ---------------------------------------------------------------------------------


class DemoPlanError(Exception):
    """The database cannot supply the batch (not seeded, or nobody left to apply)."""


@dataclass(frozen=True)
class PlannedApplication:
    """One application of the batch: who the scenario is, and the forms to submit."""

    scenario: Scenario
    disease: Disease
    form: ApplicationForm
    good_materials: tuple[MaterialItem, ...]
    """What the clerk resubmits after a return or a materials request."""


@dataclass(frozen=True)
class _Candidate:
    person_id: int
    id_number: str
    name: str
    mobile: str
    insurance_type: InsuranceType


def _file(kind: MaterialKind, hospital: str, issued_on: date, rng: random.Random) -> dict[str, Any]:
    name = f"scans/demo-{kind.value}-{hospital}-{issued_on:%Y%m%d}-{rng.randrange(16**6):06x}.pdf"
    return {
        "kind": kind.value,
        "hospital": hospital,
        "issued_on": issued_on.isoformat(),
        "file": name,
        "sha256": hashlib.sha256(name.encode()).hexdigest(),
    }


_EXTRA_KINDS = (
    MaterialKind.LAB_RESULT,
    MaterialKind.EXAM_REPORT,
    MaterialKind.INPATIENT_RECORD,
    MaterialKind.DISCHARGE_SUMMARY,
)


def _materials(
    rng: random.Random, hospitals: Sequence[str], today: date, *, days_old: tuple[int, int]
) -> list[dict[str, Any]]:
    """A diagnosis certificate from the first hospital and one or two further documents."""
    items = [
        _file(
            MaterialKind.DIAGNOSIS_CERTIFICATE,
            hospitals[0],
            today - timedelta(days=rng.randint(*days_old)),
            rng,
        )
    ]
    for kind in rng.sample(_EXTRA_KINDS, rng.randint(1, 2)):
        hospital = hospitals[0] if rng.random() < 0.7 else rng.choice(hospitals)
        items.append(_file(kind, hospital, today - timedelta(days=rng.randint(*days_old)), rng))
    return items


async def plan_batch(
    db: Database,
    policy: PolicyProfile,
    scenarios: Sequence[Scenario],
    *,
    rng: random.Random,
    today: date,
    bench_people: bool = False,
    instant_track: bool | None = None,
) -> tuple[list[PlannedApplication], list[str]]:
    """Persons, diseases, hospitals and materials for ``scenarios``; and what was skipped.

    Each person appears once in a batch, never with an open application and never for a
    disease they applied for this year (so the one-open rule and the yearly quota never get
    in the way).

    Args:
        bench_people: plan with ``chronic bench``'s synthetic persons (names starting with
            :data:`~chronic.seed.world.BENCH_NAME_PREFIX`) instead of the seeded register,
            which never offers them.
        instant_track: only diseases of the instant track (True), only two-stage ones
            (False), or both (None).

    Raises:
        DemoPlanError: no insured person or no expert pool to work with.
    """
    async with db.session() as session:
        hospitals = list(
            await session.exec(
                select(Hospital)
                .where(col(Hospital.region) == policy.region)
                .order_by(col(Hospital.code))
            )
        )
        experts = list(
            await session.exec(
                select(Expert).where(
                    col(Expert.region) == policy.region,
                    col(Expert.status) == ExpertStatus.ACTIVE,
                )
            )
        )
        open_persons = set(
            await session.exec(
                select(Application.person_id).where(col(Application.closed_at).is_(None))
            )
        )
        year = datetime.now(_zone(policy)).year
        applied = {
            (person_id, code)
            for person_id, code in await session.exec(
                select(Application.person_id, Application.disease_code).where(
                    col(Application.year) == year
                )
            )
        }
        reference = {p.id_number for p in load_reference().insured_persons}
        rows = await session.exec(
            select(InsuredPerson)
            .where(
                col(InsuredPerson.region) == policy.region,
                col(InsuredPerson.insurance_status) == InsuranceStatus.NORMAL,
            )
            .order_by(col(InsuredPerson.id))
        )
        candidates = [
            _Candidate(p.id, p.id_number, p.name, p.mobile, p.insurance_type)
            for p in rows
            # The example applicants stay free for the examples/ files and the CLI walkthrough.
            if p.id is not None
            and p.id_number not in reference
            and p.id not in open_persons
            and is_bench_name(p.name) == bench_people
        ]
        refusal_person = (
            await session.exec(
                select(InsuredPerson).where(col(InsuredPerson.id_number) == REFUSAL_ID_NUMBER)
            )
        ).first()
    if not hospitals or not experts:
        raise DemoPlanError(
            f"no hospitals or experts of {policy.region} in the database: run `chronic seed`"
        )
    qualified = [
        h.code
        for h in hospitals
        if h.level >= int(policy.material_min_hospital_level)
        and (h.public or not policy.material_public_hospital_only)
    ]
    below = [h.code for h in hospitals if h.level < int(policy.material_min_hospital_level)]
    if not qualified:
        raise DemoPlanError("no hospital of the required level in the database: run `chronic seed`")
    rng.shuffle(candidates)
    diseases = [
        d for d in policy.catalogue if instant_track is None or d.instant_track == instant_track
    ]
    rng.shuffle(diseases)
    cursor = 0
    planned: list[PlannedApplication] = []
    skipped: list[str] = []
    pools: dict[str, dict[str, int]] = {}

    def pool_sizes(category: str) -> dict[str, int]:
        """Experts of ``category`` not working at each qualified (diagnosing) hospital."""
        if category not in pools:
            pools[category] = {
                h: sum(1 for e in experts if category in e.categories and e.hospital_code != h)
                for h in qualified
            }
        return pools[category]

    for scenario in scenarios:
        if scenario is Scenario.REFUSAL:
            refusal = _plan_refusal(policy, refusal_person, open_persons, qualified, rng, today)
            if isinstance(refusal, str):
                skipped.append(refusal)
            else:
                planned.append(refusal)
            continue
        extra = 1 if scenario in (Scenario.DECLINE, Scenario.LAPSE) else 0
        chosen: tuple[Disease, str, _Candidate] | None = None
        for step in range(len(diseases)):
            disease = diseases[(cursor + step) % len(diseases)]
            if scenario is Scenario.ARBITRATION and disease.instant_track:
                continue
            stages = 1 if disease.instant_track else (3 if scenario is Scenario.ARBITRATION else 2)
            sizes = pool_sizes(disease.category)
            best = max(sizes.values())
            if best < stages + extra:
                continue
            person = next(
                (
                    c
                    for c in candidates
                    if (c.person_id, disease.code) not in applied
                    and (not disease.resident_only or c.insurance_type == InsuranceType.RESIDENT)
                ),
                None,
            )
            if person is None:
                continue
            hospital = rng.choice([h for h, size in sizes.items() if size == best])
            chosen = (disease, hospital, person)
            cursor += step + 1
            break
        if chosen is None:
            skipped.append(
                f"{scenario.label}: no free person, disease and expert pool left for it "
                "(every normal insured person has an open application or used the disease)"
            )
            continue
        disease, hospital, person = chosen
        candidates.remove(person)  # once per batch; the next search starts at a free person
        rest = [h for h in qualified if h != hospital]
        others = [hospital, *rng.sample(rest, min(1, len(rest)))]
        good = _materials(rng, others, today, days_old=(7, 300))
        if scenario is Scenario.RETURN and below:
            first = _materials(rng, [rng.choice(below)], today, days_old=(7, 120))
        elif scenario in (Scenario.RETURN, Scenario.RETURN_OLD):
            age = policy.material_max_age.days
            first = _materials(rng, others, today, days_old=(age + 30, age + 200))
        else:
            first = good
        planned.append(
            PlannedApplication(
                scenario=scenario,
                disease=disease,
                form=_form(policy, person, disease, hospital, rng.choice(qualified), first, rng),
                good_materials=tuple(MaterialItem.model_validate(m) for m in good),
            )
        )
    return planned, skipped


def _plan_refusal(
    policy: PolicyProfile,
    person: InsuredPerson | None,
    open_persons: set[int],
    qualified: list[str],
    rng: random.Random,
    today: date,
) -> PlannedApplication | str:
    disease = policy.disease(REFUSAL_DISEASE)
    if person is None or person.id is None or disease is None:
        return "refusal: the reference person with suspended insurance is not in the register"
    if person.id in open_persons:
        return "refusal: the reference person with suspended insurance has an open application"
    hospital = rng.choice(qualified)
    materials = _materials(rng, [hospital], today, days_old=(7, 200))
    candidate = _Candidate(
        person.id, person.id_number, person.name, person.mobile, person.insurance_type
    )
    return PlannedApplication(
        scenario=Scenario.REFUSAL,
        disease=disease,
        form=_form(policy, candidate, disease, hospital, hospital, materials, rng),
        good_materials=tuple(MaterialItem.model_validate(m) for m in materials),
    )


def _form(
    policy: PolicyProfile,
    person: _Candidate,
    disease: Disease,
    diagnosing: str,
    designated: str,
    materials: list[dict[str, Any]],
    rng: random.Random,
) -> ApplicationForm:
    return ApplicationForm.model_validate(
        {
            "region": policy.region,
            "applicant": {
                "name": person.name,
                "id_number": person.id_number,
                "mobile": person.mobile,
            },
            "disease_code": disease.code,
            "case_number": f"BA{rng.randrange(10**7):07d}",
            "diagnosing_hospital": diagnosing,
            "designated_hospital": designated,
            "materials": materials,
            "submitted_by": "hospital" if rng.random() < 0.3 else "applicant",
        },
        context={"policy": policy},
    )


def _zone(policy: PolicyProfile) -> timezone:
    return timezone(timedelta(hours=policy.timezone_offset_hours))


# ---- the simulated people -----------------------------------------------------------------------

_DECLINE_REASONS = (
    "本周门诊排班已满，无法在时限内完成审核",
    "外出参加学术会议，暂不能受理",
    "与申请人所在科室存在工作关联，申请回避",
    "近期承担院内质控任务，无法受理",
)
_REJECT_OPINIONS = (
    "诊断依据不足：未见并发症相关检查报告，不符合认定标准",
    "现有病历显示病情稳定，未达到门诊慢特病认定标准",
    "检查结果与申报病种不符，建议补充专科诊断后重新申报",
)
_APPROVE_OPINIONS = (
    "诊断明确，材料齐全，符合认定标准",
    "病史及检查结果支持诊断，同意认定",
    "符合门诊慢特病认定标准",
)
_MATERIALS_NOTES = (
    "请补充近三个月内的专科检查报告",
    "请补充出院小结及相关化验单",
)


@dataclass
class Tracked:
    """One application of the batch as the demo follows it."""

    plan: PlannedApplication
    application_id: str | None = None
    progress: Progress | None = None
    error: str | None = None
    last_action: str = "submitting"
    refused_actions: int = 0
    """Actions a workflow validator refused (races with a lapse); the demo carries on."""
    lapsed_on_purpose: set[int] = field(default_factory=set)
    declined: bool = False
    materials_asked: bool = False
    resubmitted_rounds: set[int] = field(default_factory=set)

    @property
    def finished(self) -> bool:
        if self.error is not None:
            return True
        return self.progress is not None and self.progress.finished_at is not None

    @property
    def status(self) -> str:
        if self.error is not None and self.progress is None:
            return "not submitted"
        return str(self.progress.status) if self.progress else "submitted"


Action = Callable[[Handle], Awaitable[Any]]


def next_action(
    tracked: Tracked, progress: Progress, rng: random.Random
) -> tuple[str, Action] | None:
    """What the scenario's people do next on ``progress``; None = nothing now (wait)."""
    scenario = tracked.plan.scenario
    if (
        progress.status in (ApplicationStatus.RETURNED, ApplicationStatus.MATERIALS_REQUESTED)
        and progress.resubmission_deadline is not None
        and progress.materials_round not in tracked.resubmitted_rounds
    ):
        tracked.resubmitted_rounds.add(progress.materials_round)
        resubmission = Resubmission(materials=tracked.plan.good_materials)
        return "clerk resubmits materials", lambda h: h.execute_update(
            ApplicationWorkflow.resubmit, resubmission
        )
    offer = progress.current_offer
    if offer is None or progress.status != ApplicationStatus.IN_REVIEW:
        return None
    expert = offer.expert
    if offer.status == OfferStatus.PENDING:
        if offer.seq in tracked.lapsed_on_purpose:
            return None
        if scenario is Scenario.LAPSE and not tracked.lapsed_on_purpose:
            tracked.lapsed_on_purpose.add(offer.seq)
            tracked.last_action = f"{expert} lets the offer lapse"
            return None
        if scenario is Scenario.DECLINE and not tracked.declined:
            tracked.declined = True
            decline = DeclineOffer(expert=expert, reason=rng.choice(_DECLINE_REASONS))
            return f"{expert} declines", lambda h: h.execute_update(
                ApplicationWorkflow.decline, decline
            )
        accept = AcceptOffer(expert=expert)
        return f"{expert} accepts", lambda h: h.execute_update(ApplicationWorkflow.accept, accept)
    if offer.status != OfferStatus.ACCEPTED:
        return None
    if scenario is Scenario.MATERIALS and not tracked.materials_asked:
        tracked.materials_asked = True
        request = RequestMaterials(expert=expert, note=rng.choice(_MATERIALS_NOTES))
        return f"{expert} requests materials", lambda h: h.execute_update(
            ApplicationWorkflow.request_materials, request
        )
    approve = _approves(scenario, offer.stage)
    opinion = rng.choice(_APPROVE_OPINIONS if approve else _REJECT_OPINIONS)
    decide = Decide(expert=expert, approve=approve, opinion=opinion)
    verb = "approves" if approve else "rejects"
    return f"{expert} {verb} ({offer.stage})", lambda h: h.execute_update(
        ApplicationWorkflow.decide, decide
    )


def _approves(scenario: Scenario, stage: ReviewStage) -> bool:
    if scenario is Scenario.REJECT:
        return False
    if scenario is Scenario.ARBITRATION:
        return stage != ReviewStage.RE_REVIEW  # re-review dissents; the third expert approves
    return True


# ---- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoApplication:
    """How one application of the batch ended (IDs and codes only)."""

    application_id: str | None
    scenario: Scenario
    disease_code: str
    instant_track: bool
    progress: Progress | None
    error: str | None
    refused_actions: int

    @property
    def status(self) -> ApplicationStatus | None:
        return self.progress.status if self.progress else None

    @property
    def finished(self) -> bool:
        return self.progress is not None and self.progress.finished_at is not None

    @property
    def as_planned(self) -> bool:
        return self.finished and self.status == self.scenario.expected

    def offers_with(self, status: OfferStatus) -> int:
        return sum(1 for o in self.progress.offers if o.status == status) if self.progress else 0


@dataclass(frozen=True)
class DemoReport:
    """What a demo run did: every application, the SMS written, the links to look further."""

    applications: tuple[DemoApplication, ...]
    skipped: tuple[str, ...]
    sms: dict[str, int]
    """Rows of sms_outbox by template, for the batch's applications and hospital notices."""
    sms_not_sent: int
    elapsed_seconds: float
    timed_out: bool
    workflows_url: str
    approved_url: str

    @property
    def submitted(self) -> tuple[DemoApplication, ...]:
        return tuple(a for a in self.applications if a.application_id is not None)

    @property
    def all_finished(self) -> bool:
        return all(a.finished for a in self.submitted)

    @property
    def all_as_planned(self) -> bool:
        return all(a.as_planned for a in self.applications)

    @property
    def by_status(self) -> Counter[str]:
        return Counter(
            str(a.status) if a.status else "submitted" if a.application_id else "not submitted"
            for a in self.applications
        )

    @property
    def offers_made(self) -> int:
        return sum(len(a.progress.offers) for a in self.submitted if a.progress)

    def offers_with(self, status: OfferStatus) -> int:
        return sum(a.offers_with(status) for a in self.applications)


def workflows_url(ui_url: str, namespace: str = "default", query: str | None = None) -> str:
    """The UI's workflow list, optionally filtered by a visibility ``query``."""
    url = f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows"
    return url if query is None else f"{url}?query={quote(query, safe='')}"


# ---- running it ---------------------------------------------------------------------------------


class _Demo:
    def __init__(
        self,
        client: Client,
        db: Database,
        settings: Settings,
        policy: PolicyProfile,
        options: DemoOptions,
        console: Console,
        rng: random.Random,
        search_attributes: bool,
    ) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.policy = policy
        self.options = options
        self.console = console
        self.rng = rng
        self.search_attributes = search_attributes
        self.tracked: list[Tracked] = []
        self.started = time.monotonic()

    async def think(self) -> None:
        low, high = self.options.think_range()
        await asyncio.sleep(self.rng.uniform(low, high))

    async def submit_and_follow(self, plans: Sequence[PlannedApplication]) -> None:
        """Submit the batch one by one and follow each application as soon as it exists."""
        followers: list[asyncio.Task[None]] = []
        try:
            for i, plan in enumerate(plans):
                tracked = Tracked(plan)
                self.tracked.append(tracked)
                if i:
                    await asyncio.sleep(self.options.submit_interval)
                try:
                    tracked.application_id = await submit(
                        plan.form,
                        client=self.client,
                        db=self.db,
                        settings=self.settings,
                        policy=self.policy,
                        search_attributes=self.search_attributes,
                    )
                except SubmissionRefused as refused:
                    # Another desk was faster for this person and disease: not this demo's.
                    tracked.error = f"not submitted: {refused.problems[0]}"
                    continue
                tracked.last_action = "submitted"
                followers.append(asyncio.create_task(self.follow(tracked)))
            await asyncio.gather(*followers)
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    async def follow(self, tracked: Tracked) -> None:
        """Play the experts and the clerk of one application until it is finished."""
        assert tracked.application_id is not None
        handle = self.client.get_workflow_handle_for(
            ApplicationWorkflow.run, tracked.application_id
        )
        while True:
            try:
                progress = await handle.query(ApplicationWorkflow.progress)
            except RPCError as error:  # a worker restarting, the server busy: ask again
                tracked.last_action = f"progress query failed ({error.status.name}); retrying"
                await asyncio.sleep(1.0)
                continue
            tracked.progress = progress
            if progress.finished_at is not None:
                return
            step = next_action(tracked, progress, self.rng)
            if step is None:
                await asyncio.sleep(self.options.poll_interval)
                continue
            what, action = step
            await self.think()
            try:
                await action(handle)
                tracked.last_action = what
            except WorkflowUpdateFailedError as error:
                # The validator refused, e.g. the offer lapsed a moment before the accept.
                tracked.refused_actions += 1
                tracked.last_action = f"{what}: refused ({error.cause or error})"
            except RPCError as error:
                tracked.refused_actions += 1
                tracked.last_action = f"{what}: not delivered ({error.status.name})"
                await asyncio.sleep(1.0)

    # -- display --

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def live_table(self) -> RenderableType:
        done = sum(1 for t in self.tracked if t.finished)
        table = Table(
            title=f"chronic demo · {len(self.tracked)} applications · {done} finished · "
            f"{self.elapsed():.0f} s",
            title_justify="left",
            expand=False,
        )
        for column in ("Application", "Disease", "Scenario", "Status", "Stage", "Expert"):
            table.add_column(column, no_wrap=True)
        table.add_column("Offers", no_wrap=True)
        table.add_column("Last action", no_wrap=True, max_width=40, overflow="ellipsis")
        for tracked in self.tracked:
            progress = tracked.progress
            offer = progress.current_offer if progress else None
            table.add_row(
                tracked.application_id or "-",
                _disease(tracked.plan.disease),
                tracked.plan.scenario.label,
                _status_text(tracked.status),
                str(progress.stage) if progress else "-",
                f"{offer.expert} ({offer.status})" if offer else "-",
                _offers_cell(progress),
                tracked.error or tracked.last_action,
            )
        return table

    def status_line(self) -> str:
        counts = Counter(t.status for t in self.tracked)
        parts = " · ".join(f"{status} {n}" for status, n in sorted(counts.items()))
        done = sum(1 for t in self.tracked if t.finished)
        return (
            f"[{self.elapsed():4.0f} s] {done}/{len(self.tracked)} finished · {parts}"
            if self.tracked
            else f"[{self.elapsed():4.0f} s] submitting"
        )

    async def watch(self, plans: Sequence[PlannedApplication]) -> bool:
        """Run the batch with the live table or status lines; False when the timeout passed."""
        work = asyncio.create_task(self.submit_and_follow(plans))
        live = self.options.live if self.options.live is not None else self.console.is_terminal
        try:
            if live:
                with Live(
                    console=self.console,
                    refresh_per_second=2,
                    transient=True,
                    get_renderable=self.live_table,
                ):
                    return await _wait(work, self.options.timeout)
            return await self._with_status_lines(work)
        finally:
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work

    async def _with_status_lines(self, work: asyncio.Task[None]) -> bool:
        deadline = time.monotonic() + self.options.timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(0.0, min(self.options.status_every, left))
            done, _ = await asyncio.wait({work}, timeout=wait)
            if done:
                work.result()
                self.console.print(self.status_line(), markup=False, highlight=False)
                return True
            self.console.print(self.status_line(), markup=False, highlight=False)
            if time.monotonic() >= deadline:
                return False


async def _wait(work: asyncio.Task[None], seconds: float) -> bool:
    done, _ = await asyncio.wait({work}, timeout=seconds)
    if done:
        work.result()
        return True
    return False


def _disease(disease: Disease) -> str:
    return f"{disease.code}{' ⚡' if disease.instant_track else ''}"


_STATUS_STYLES = {
    "approved": "bold green",
    "rejected": "bold red",
    "refused": "red",
    "closed": "yellow",
    "returned": "yellow",
    "materials_requested": "yellow",
    "in_review": "cyan",
    "intake": "blue",
}


def _status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def _offers_cell(progress: Progress | None) -> str:
    if progress is None or not progress.offers:
        return "0"
    counts = Counter(o.status for o in progress.offers)
    notes = [
        f"{counts[s]} {label}"
        for s, label in (
            (OfferStatus.DECLINED, "declined"),
            (OfferStatus.LAPSED, "lapsed"),
            (OfferStatus.DECISION_LAPSED, "decision lapsed"),
        )
        if counts[s]
    ]
    return f"{len(progress.offers)}" + (f" ({', '.join(notes)})" if notes else "")


async def _sms_counts(
    db: Database, ids: Iterable[str], since: datetime
) -> tuple[dict[str, int], int]:
    """sms_outbox rows of the batch by template (and hospital notices since the start)."""
    wanted = list(ids)
    condition = sa.or_(
        col(SmsOutbox.application_id).in_(wanted),
        sa.and_(col(SmsOutbox.application_id).is_(None), col(SmsOutbox.created_at) >= since),
    )
    async with db.session() as session:
        rows = (
            await session.exec(
                select(SmsOutbox.template, SmsOutbox.status, sa.func.count())
                .where(condition)
                .group_by(col(SmsOutbox.template), col(SmsOutbox.status))
            )
        ).all()
    by_template: Counter[str] = Counter()
    not_sent = 0
    for template, status, count in rows:
        by_template[template] += count
        if status != "sent":
            not_sent += count
    return dict(by_template), not_sent


_STAGE_SHORT = {
    ReviewStage.INITIAL_REVIEW: "initial",
    ReviewStage.RE_REVIEW: "re-review",
    ReviewStage.FINAL_REVIEW: "final",
    ReviewStage.ARBITRATION: "3rd expert",
}
_DECISION_SHORT = {
    ReviewDecision.APPROVE: "✓",
    ReviewDecision.REJECT: "✗",
    ReviewDecision.REQUEST_MATERIALS: "materials",
}


def default_console() -> Console:
    """Standard output; without a terminal (CI, a pipe) wide enough for the summary tables."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 140))
    return console


def print_summary(report: DemoReport, console: Console, *, timeout: float) -> None:
    """The table of every application, the totals, the SMS written and the UI links."""
    finished = sum(1 for a in report.submitted if a.finished)
    if report.timed_out:
        head = (
            f"[bold yellow]chronic demo: timeout after {timeout:.0f} s[/] — "
            f"{finished} of {len(report.submitted)} applications finished"
        )
    else:
        head = (
            f"[bold green]chronic demo[/]: {len(report.submitted)} applications, all finished "
            f"in {report.elapsed_seconds:.0f} s"
        )
    console.print(head)

    table = Table(title="Applications", title_justify="left")
    for column in ("Application", "Disease", "Scenario", "Result", "Offers"):
        table.add_column(column, no_wrap=True)
    table.add_column("Decisions / reason", no_wrap=True, max_width=42, overflow="ellipsis")
    table.add_column("Planned", no_wrap=True)
    for a in report.applications:
        progress = a.progress
        stages = " · ".join(
            f"{_STAGE_SHORT.get(d.stage, d.stage)} {_DECISION_SHORT.get(d.decision, d.decision)}"
            for d in (progress.decisions if progress else ())
        )
        table.add_row(
            a.application_id or "-",
            f"{a.disease_code}{' ⚡' if a.instant_track else ''}",
            a.scenario.label,
            _status_text(str(a.status) if a.status else "not submitted"),
            _offers_cell(progress),
            stages or (progress.reasons[0] if progress and progress.reasons else a.error or "-"),
            Text("✓", style="green")
            if a.as_planned
            else Text(f"✗ {a.scenario.expected}", style="red"),
        )
    console.print(table)

    totals = Table(title="Totals", title_justify="left", show_header=False)
    totals.add_column(no_wrap=True)
    totals.add_column(justify="right", no_wrap=True)
    for status, n in sorted(report.by_status.items(), key=lambda kv: (-kv[1], kv[0])):
        totals.add_row(f"status {status}", str(n))
    reviewed = [a for a in report.submitted if a.progress and a.progress.offers]
    totals.add_row("offers made", str(report.offers_made))
    totals.add_row("  declined", str(report.offers_with(OfferStatus.DECLINED)))
    totals.add_row("  lapsed (reassigned)", str(report.offers_with(OfferStatus.LAPSED)))
    totals.add_row("  decision lapsed", str(report.offers_with(OfferStatus.DECISION_LAPSED)))
    if report.submitted:
        totals.add_row(
            "offers per application", f"{report.offers_made / len(report.submitted):.2f}"
        )
    if reviewed:
        totals.add_row(
            "offers per reviewed application", f"{report.offers_made / len(reviewed):.2f}"
        )
    totals.add_row(
        "as planned", f"{sum(a.as_planned for a in report.applications)}/{len(report.applications)}"
    )
    sms_total = sum(report.sms.values())
    totals.add_row(
        "SMS written (sms_outbox)",
        f"{sms_total}" + (f" ({report.sms_not_sent} not sent)" if report.sms_not_sent else ""),
    )
    for template, n in sorted(report.sms.items()):
        totals.add_row(f"  {template}", str(n))
    console.print(totals)

    for line in report.skipped:
        console.print(f"[yellow]skipped[/] {line}", highlight=False)
    console.print(f"Temporal UI, all workflows: {report.workflows_url}", soft_wrap=True)
    console.print(f"approved only:              {report.approved_url}", soft_wrap=True)
    for scenario in (Scenario.ARBITRATION, Scenario.MATERIALS, Scenario.LAPSE):
        example = next(
            (a for a in report.submitted if a.scenario is scenario and a.application_id), None
        )
        if example is not None and example.application_id is not None:
            url = (
                report.workflows_url.split("?")[0]
                + "?query="
                + quote(f'WorkflowId="{example.application_id}"', safe="")
            )
            console.print(f"{scenario.label + ':':<27} {url}", soft_wrap=True)


async def run_demo(
    settings: Settings,
    *,
    ui_url: str,
    count: int = 24,
    options: DemoOptions | None = None,
    client: Client | None = None,
    db: Database | None = None,
    console: Console | None = None,
    search_attributes: bool = True,
) -> DemoReport:
    """Submit ``count`` varied applications and play their experts until all are finished.

    Args:
        settings: where the stack is (database, Temporal, region, applicant key).
        ui_url: base URL of the Temporal UI, for the links of the summary.
        options: windows, pauses, timeout (defaults: 20 s to accept, 40 s to decide).
        client, db: an existing connection (tests); by default the configured stack's.
        console: where the live table and the summary go (default: standard output).
        search_attributes: False only on a server without the product's attributes.

    Raises:
        DemoPlanError: the database has nobody or no expert pool to run the batch with.
    """
    options = options or DemoOptions()
    console = console or default_console()
    rng = random.Random(options.seed)
    policy = options.policy(settings)
    own_db = db is None
    if client is None:
        from chronic.temporal_client import connect

        client = await connect(settings)
    database = db or Database.from_settings(settings)
    since = datetime.now(UTC)
    try:
        today = since.astimezone(_zone(policy)).date()
        plans, skipped = await plan_batch(
            database, policy, plan_scenarios(count), rng=rng, today=today
        )
        if not plans:
            raise DemoPlanError("nothing to submit: " + "; ".join(skipped))
        windows = ", ".join(
            f"{name} {int(getattr(policy, name).total_seconds())} s"
            for name in ("accept_window", "decision_window", "resubmission_window")
        )
        mix = ", ".join(f"{n} {s.label}" for s, n in Counter(p.scenario for p in plans).items())
        console.print(
            f"[bold]chronic demo[/]: {len(plans)} applications in {policy.region} ({mix}); "
            f"{windows}",
            highlight=False,
        )
        demo = _Demo(client, database, settings, policy, options, console, rng, search_attributes)
        finished_in_time = await demo.watch(plans)
        elapsed = demo.elapsed()
        ids = [t.application_id for t in demo.tracked if t.application_id]
        sms, not_sent = await _sms_counts(database, ids, since)
    finally:
        if own_db:
            await database.dispose()
    namespace = client.namespace
    report = DemoReport(
        applications=tuple(
            DemoApplication(
                application_id=t.application_id,
                scenario=t.plan.scenario,
                disease_code=t.plan.disease.code,
                instant_track=t.plan.disease.instant_track,
                progress=t.progress,
                error=t.error,
                refused_actions=t.refused_actions,
            )
            for t in demo.tracked
        ),
        skipped=tuple(skipped),
        sms=sms,
        sms_not_sent=not_sent,
        elapsed_seconds=elapsed,
        timed_out=not finished_in_time,
        workflows_url=workflows_url(ui_url, namespace),
        approved_url=workflows_url(
            ui_url, namespace, f'{sa_keys.APPLICATION_STATUS.name}="{ApplicationStatus.APPROVED}"'
        ),
    )
    print_summary(report, console, timeout=options.timeout)
    return report
