"""What a signed-in person may see and do: an applicant's own applications and their
timeline; an expert's offered or held review tasks and the actions on them.

An applicant's timeline is read from the business database while intake or the experts are at
work, otherwise from the workflow's ``progress`` query (the database row when the process does
not answer); it never names an expert. An expert's inbox lists what is offered
to or held by them as the business database records it (one query; the database trails the
workflow by an activity at most); a task page, its scans and an action ask the workflow that the
task is theirs. An expert never sees the applicant's name, ID number or mobile. Expert actions
are the CLI's Updates (:func:`chronic.cli.output.send_update`), so the workflow's validators
refuse them in the same words, before anything reaches history.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar
from temporalio.client import Client
from temporalio.service import RPCError

from chronic.actor import record_as
from chronic.cli.output import CommandFailed, local, progress_of, send_update
from chronic.db import Database
from chronic.documents import Document, DocumentStore
from chronic.hall.sessions import Visitor
from chronic.settings import get_settings
from models.benefit import BenefitStatus, ChangeDesignation, DesignationKind
from models.domain import (
    ApplicationStatus,
    MaterialKind,
    OfferStatus,
    ReviewDecision,
    ReviewStage,
)
from models.messages import (
    AcceptOffer,
    Decide,
    DecisionView,
    DeclineOffer,
    OfferView,
    Progress,
    RequestMaterials,
)
from models.policy import FormField, PolicyProfile, load_policy
from models.tables import Application, Benefit, Hospital, Material, Offer, Pharmacy, Review
from workflows.application import ApplicationWorkflow

STATUS_LABELS = {
    ApplicationStatus.SUBMITTED: "已提交",
    ApplicationStatus.INTAKE: "受理审核中",
    ApplicationStatus.RETURNED: "已退回，待补正",
    ApplicationStatus.IN_REVIEW: "专家评审中",
    ApplicationStatus.MATERIALS_REQUESTED: "待补充材料",
    ApplicationStatus.APPROVED: "已通过认定",
    ApplicationStatus.REJECTED: "未通过认定",
    ApplicationStatus.REFUSED: "不予受理",
    ApplicationStatus.CLOSED: "已终止办理",
}
STAGE_LABELS = {
    ReviewStage.INITIAL_REVIEW: "专家初审",
    ReviewStage.RE_REVIEW: "专家复审",
    ReviewStage.FINAL_REVIEW: "专家终审",
    ReviewStage.ARBITRATION: "专家仲裁评审",
    ReviewStage.OFFICE_ACCEPTANCE: "经办机构受理",
    ReviewStage.HOSPITAL_ASSESSMENT: "医疗机构鉴定",
    ReviewStage.OFFICE_CONFIRMATION: "经办机构审核确认",
}
MATERIAL_LABELS = {
    MaterialKind.DIAGNOSIS_CERTIFICATE: "诊断证明",
    MaterialKind.INPATIENT_RECORD: "住院病历",
    MaterialKind.EXAM_REPORT: "检查报告",
    MaterialKind.LAB_RESULT: "化验结果",
    MaterialKind.DISCHARGE_SUMMARY: "出院小结",
}
FINISHED = {
    ApplicationStatus.APPROVED,
    ApplicationStatus.REJECTED,
    ApplicationStatus.REFUSED,
    ApplicationStatus.CLOSED,
}

WAITING_FOR_MATERIALS = {ApplicationStatus.RETURNED, ApplicationStatus.MATERIALS_REQUESTED}


class NotYours(Exception):
    """The application is not the visitor's to see (the same answer as a missing one)."""


class NoScan(NotYours):
    """A material of the expert's own task whose scan is not in the store: it was submitted by
    digest only (a file kept elsewhere), or the store cannot read it."""


@functools.lru_cache(maxsize=16)
def _policy(region: str) -> PolicyProfile | None:
    """The region's profile, parsed once per process (names and time zone are all we read)."""
    try:
        return load_policy(region, get_settings().policy_dir)
    except LookupError:
        return None


def zone_of(region: str) -> timezone:
    """The region's local time."""
    policy = _policy(region)
    return timezone(timedelta(hours=policy.timezone_offset_hours if policy else 8))


def disease_name(region: str, code: str) -> str:
    policy = _policy(region)
    disease = policy.disease(code) if policy else None
    return disease.name if disease else code


# ---- applicants -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    application_id: str
    disease: str
    status: str
    submitted: str


@dataclass(frozen=True)
class Step:
    """One line of the timeline: ``state`` is done, current, failed or waiting."""

    label: str
    state: str
    when: str = ""
    note: str = ""


@dataclass(frozen=True)
class Timeline:
    application_id: str
    disease: str
    status: str
    steps: list[Step] = field(default_factory=list)
    result: str = ""
    reasons: list[str] = field(default_factory=list)
    benefit: str = ""
    live: bool = True  # False: read from the database only (the process did not answer)
    region: str = ""
    resubmit: bool = False  # returned or asked for materials: a new round may be brought

    @property
    def card(self) -> bool:
        """A benefit was issued: its card can be downloaded."""
        return bool(self.benefit)


_MINE = (
    select(Application)
    .where(col(Application.person_id) == bindparam("person_id"))
    .order_by(col(Application.submitted_at).desc())
)
"""An applicant's applications, newest first. The statements every page runs are built
once: SQLAlchemy then reuses their cache key and compiled form instead of building and
hashing a new statement per request (about half of its cost per query)."""


async def my_applications(db: Database, visitor: Visitor) -> list[Summary]:
    async with db.reading() as session:
        rows = (await session.exec(_MINE, params={"person_id": visitor.person_id})).all()
    return [
        Summary(
            row.id,
            disease_name(row.region, row.disease_code),
            STATUS_LABELS.get(row.status, str(row.status)),
            local(row.submitted_at, zone_of(row.region)),
        )
        for row in rows
    ]


async def own_row(db: Database, visitor: Visitor, application_id: str) -> Application:
    async with db.reading() as session:
        return await _own(session, visitor, application_id)


async def _own(session: AsyncSession, visitor: Visitor, application_id: str) -> Application:
    row = await session.get(Application, application_id)
    if row is None or visitor.person_id is None or row.person_id != visitor.person_id:
        raise NotYours(application_id)
    return row


async def my_card(db: Database, visitor: Visitor, application_id: str) -> bytes:
    """The applicant's benefit card as a PDF (NotYours for anybody else's application, and
    for one without a benefit); each download is in the audit trail."""
    from chronic.certificate import CertificateError, card_fields, render_pdf
    from models.policy import load_policy

    row = await own_row(db, visitor, application_id)
    async with db.session() as session:
        try:
            fields = await card_fields(session, application_id, load_policy(row.region))
        except CertificateError:
            raise NotYours(application_id) from None
        pdf = render_pdf(fields)
        await record_as(session, visitor.actor, "hall_card_downloaded", application_id)
    return pdf


async def hospitals_of(db: Database, region: str) -> list[tuple[str, str]]:
    """The designated hospitals an applicant may change to: the region's register."""
    return await register_entries(db, Hospital, region)


async def register_entries(
    db: Database, register: type[Hospital] | type[Pharmacy], region: str
) -> list[tuple[str, str]]:
    """(code, name) of a register's entries in ``region``, by code."""
    async with db.reading() as session:
        return await _entries(session, register, region)


async def _entries(
    session: AsyncSession, register: type[Hospital] | type[Pharmacy], region: str
) -> list[tuple[str, str]]:
    found = await session.execute(
        select(col(register.code), col(register.name))
        .where(col(register.region) == region)
        .order_by(col(register.code))
    )
    return [(code, name) for code, name in found.all()]


def _designates_pharmacy(region: str) -> bool:
    """The region's form designates a pharmacy (Wuhan, Jilin)."""
    form = load_policy(region).form
    return FormField.DESIGNATED_PHARMACY in (*form.required, *(form.required_out_of_area or ()))


async def pharmacies_of(db: Database, region: str) -> list[tuple[str, str]]:
    """The designated pharmacies an applicant may change to: the region's pharmacy register,
    in a region whose form designates a pharmacy (Wuhan, Jilin); empty elsewhere."""
    if not _designates_pharmacy(region):
        return []
    return await register_entries(db, Pharmacy, region)


async def designations_of(
    db: Database, region: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """:func:`hospitals_of` and :func:`pharmacies_of` on one connection (a benefit's
    timeline offers both changes)."""
    async with db.reading() as session:
        hospitals = await _entries(session, Hospital, region)
        pharmacies = (
            await _entries(session, Pharmacy, region) if _designates_pharmacy(region) else []
        )
    return hospitals, pharmacies


async def change_my_designation(
    db: Database,
    client: Client,
    visitor: Visitor,
    application_id: str,
    kind: DesignationKind,
    code: str,
) -> str:
    """Change the designated hospital or pharmacy of the applicant's own benefit, through the
    benefit workflow's ``change_designation`` Update (the CLI's ``change-hospital`` and
    ``change-pharmacy``): its validator refuses, in the CLI's words, a code outside the
    region's register and a change beyond the region's yearly limit (seed 002: twice a year in
    Sanmenxia; Wuhan once).

    Raises:
        NotYours: not the applicant's application.
        CommandFailed: refused (the validator's words), or no benefit.
    """
    from chronic.cli.benefit import update_benefit
    from workflows.benefit import BenefitWorkflow

    await own_row(db, visitor, application_id)
    change = ChangeDesignation(kind=kind, code=code.strip().upper(), actor=visitor.actor)
    view = await update_benefit(
        client,
        application_id,
        lambda h: h.execute_update(BenefitWorkflow.change_designation, change),
    )
    async with db.session() as session:
        await record_as(
            session, visitor.actor, f"hall_change_{kind.value}", application_id, to=change.code
        )
        if kind == DesignationKind.HOSPITAL:
            name = view.designated_hospital_name
        else:
            pharmacy = await session.get(Pharmacy, change.code)
            name = pharmacy.name if pharmacy is not None else change.code
    return f"{kind.label}已变更为 {name or change.code}，变更结果将以短信通知。"


ON_RECORD = {
    ApplicationStatus.INTAKE,
    ApplicationStatus.IN_REVIEW,
    ApplicationStatus.MATERIALS_REQUESTED,
}
"""Statuses whose timeline the database holds entirely (offers, decisions): read from there.
Submitted (its process may not have started), returned (the resubmission deadline is the
workflow's) and finished applications are read from the workflow."""

FINISHED_KEPT = 10_000  # finished timelines kept per process (they no longer change)
_finished: OrderedDict[str, Timeline] = OrderedDict()


async def timeline(
    db: Database, client: Client | None, visitor: Visitor, application_id: str
) -> Timeline:
    """The applicant's view of their application (NotYours for anybody else's); from the
    database row alone when Temporal (``client`` None) or the process does not answer.

    While intake or the experts are at work (:data:`ON_RECORD`) it is read from the business
    database — the ``offer`` and ``review`` rows the activities write — which trails the
    workflow by an activity at most. Otherwise the workflow's ``progress`` query answers; a
    finished application's timeline is kept once read, since it no longer changes.
    """
    # One reading session (one pooled connection, no BEGIN/COMMIT) for what the database
    # answers: the row, and its offers and decisions or a kept timeline's benefit. None is
    # held while the workflow is asked.
    async with db.reading() as session:
        row = await _own(session, visitor, application_id)
        zone = zone_of(row.region)
        disease = disease_name(row.region, row.disease_code)
        status = ApplicationStatus(row.status)
        if client is not None and status in ON_RECORD and row.closed_at is None:
            return _from_progress(await _recorded_progress(session, row), row, disease, zone)
        if client is not None and (kept := _finished.get(application_id)) is not None:
            return await _with_benefit_now(session, kept)
    progress = None
    if client is not None:
        with contextlib.suppress(CommandFailed, RuntimeError, RPCError):
            progress = await progress_of(client, application_id)
    if progress is None:
        steps = [Step("提交申请", "done", local(row.submitted_at, zone))]
        if status not in FINISHED:
            steps.append(Step(STATUS_LABELS.get(status, str(status)), "current"))
        return Timeline(
            application_id,
            disease,
            STATUS_LABELS.get(status, str(status)),
            steps,
            result=STATUS_LABELS[status] if status in FINISHED else "",
            reasons=[row.outcome_reason] if row.outcome_reason and status in FINISHED else [],
            live=False,
            region=row.region,
            resubmit=status in WAITING_FOR_MATERIALS,
        )
    shown = _from_progress(progress, row, disease, zone)
    if progress.status in FINISHED and progress.finished_at is not None:
        _finished[application_id] = shown
        while len(_finished) > FINISHED_KEPT:
            _finished.popitem(last=False)
    if not shown.benefit:
        return shown
    async with db.reading() as session:
        return await _with_benefit_now(session, shown)


BENEFIT_NOTES = {
    BenefitStatus.SUSPENDED: "住院期间暂停",
    BenefitStatus.ENDED: "已到期终止",
    BenefitStatus.REVOKED: "已撤销",
}


async def _with_benefit_now(session: AsyncSession, shown: Timeline) -> Timeline:
    """The timeline with its benefit as it stands now: the application's result is fixed,
    but a benefit's hospital, pharmacy, validity and status change after it (the benefit's
    workflow writes each change to its row before it answers)."""
    if not shown.benefit:
        return shown
    found = (
        await session.exec(
            select(Benefit, Hospital, Pharmacy)
            .join(Hospital, col(Hospital.code) == col(Benefit.designated_hospital_code))
            .join(
                Pharmacy,
                col(Pharmacy.code) == col(Benefit.pharmacy_code),
                isouter=True,
            )
            .where(col(Benefit.application_id) == shown.application_id)
        )
    ).first()
    if found is None:
        return shown
    benefit, hospital, pharmacy = found
    valid_to = benefit.valid_to.isoformat() if benefit.valid_to else "长期"
    line = f"待遇有效期 {benefit.valid_from.isoformat()} 至 {valid_to}，定点医院：{hospital.name}"
    if pharmacy is not None:
        line += f"，定点药店：{pharmacy.name}"
    if (note := BENEFIT_NOTES.get(BenefitStatus(benefit.status))) is not None:
        line += f"（{note}）"
    return dataclasses.replace(shown, benefit=line)


_OFFERS = (
    select(Offer)
    .where(col(Offer.application_id) == bindparam("application_id"))
    .order_by(col(Offer.seq))
)
_DECISIONS = (
    select(Review)
    .where(
        col(Review.application_id) == bindparam("application_id"),
        or_(
            col(Review.decision) == ReviewDecision.APPROVE,
            col(Review.decision) == ReviewDecision.REJECT,
        ),
    )
    .order_by(col(Review.decided_at))
)
"""An application's offers in order, and its experts' decisions (built once, as _MINE)."""


async def _recorded_progress(session: AsyncSession, row: Application) -> Progress:
    """What :func:`_from_progress` reads, from the application's rows: its offers in order and
    the experts' decisions (a request for materials is not one, as in the workflow)."""
    offers = (await session.exec(_OFFERS, params={"application_id": row.id})).all()
    reviews = (await session.exec(_DECISIONS, params={"application_id": row.id})).all()
    return Progress(
        application_id=row.id,
        region=row.region,
        disease_code=row.disease_code,
        status=row.status,
        stage=row.stage,
        submitted_at=row.submitted_at,
        waiting_for="",
        offers=tuple(
            OfferView(
                offer_id=offer.id or 0,
                seq=offer.seq,
                stage=offer.stage,
                expert=offer.expert_code,
                pool_size=offer.pool_size,
                status=offer.status,
                offered_at=offer.offered_at,
                accept_deadline=offer.accept_deadline,
                decision_deadline=offer.decision_deadline,
                answered_at=offer.answered_at,
            )
            for offer in offers
        ),
        decisions=tuple(
            DecisionView(
                stage=review.stage,
                expert=review.expert_code,
                decision=review.decision,
                opinion=review.opinion,
                at=review.decided_at,
            )
            for review in reviews
        ),
    )


def _from_progress(progress: Progress, row: Application, disease: str, zone: timezone) -> Timeline:
    status = progress.status
    steps = [Step("提交申请", "done", local(progress.submitted_at, zone))]
    if status in (ApplicationStatus.SUBMITTED, ApplicationStatus.INTAKE):
        steps.append(Step("受理审核", "current"))
    elif status == ApplicationStatus.RETURNED:
        deadline = local(progress.resubmission_deadline, zone)
        steps.append(Step("受理审核", "failed", note=f"已退回，请于{deadline}前补正后重新提交"))
    elif status == ApplicationStatus.REFUSED:
        steps.append(Step("受理审核", "failed", note="不予受理"))
    else:
        steps.append(Step("受理审核", "done"))
    stages: list[ReviewStage] = []
    for offer in progress.offers:
        if offer.stage not in stages:
            stages.append(offer.stage)
    for stage in stages:
        decided = [d for d in progress.decisions if d.stage == stage]
        final = [d for d in decided if d.decision != ReviewDecision.REQUEST_MATERIALS]
        label = STAGE_LABELS.get(stage, str(stage))
        if final:
            steps.append(Step(label, "done", local(final[-1].at, zone)))
        elif status == ApplicationStatus.MATERIALS_REQUESTED and decided:
            steps.append(Step(label, "current", note=f"需补充材料：{decided[-1].opinion}"))
        elif status in FINISHED:
            steps.append(Step(label, "failed", note="未完成"))
        else:
            steps.append(Step(label, "current", note="评审中"))
    result, reasons, benefit = "", list(progress.reasons), ""
    if status in FINISHED:
        result = STATUS_LABELS[status]
        if status == ApplicationStatus.REJECTED:
            rejections = [d.opinion for d in progress.decisions if d.decision == "reject"]
            reasons = reasons or rejections[-1:]
        if not reasons and row.outcome_reason:
            reasons = [row.outcome_reason]
        if progress.benefit is not None:
            until = progress.benefit.valid_to
            valid_to = until.isoformat() if until else "长期"
            benefit = (
                f"待遇有效期 {progress.benefit.valid_from.isoformat()} 至 {valid_to}，"
                f"定点医院：{progress.benefit.designated_hospital_name}"
            )
        steps.append(
            Step(
                "办理结果",
                "done" if status == ApplicationStatus.APPROVED else "failed",
                local(progress.finished_at, zone),
                result,
            )
        )
    return Timeline(
        progress.application_id,
        disease,
        STATUS_LABELS.get(status, str(status)),
        steps,
        result=result,
        reasons=reasons,
        benefit=benefit,
        region=row.region,
        resubmit=status in WAITING_FOR_MATERIALS,
    )


# ---- experts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskDocument:
    """One material of a task: what it is, and the SHA-256 of its stored scan."""

    label: str
    sha256: str


@dataclass(frozen=True)
class Task:
    """An application offered to or held by the signed-in expert (no personal data)."""

    application_id: str
    disease: str
    stage: str
    status: str  # pending (accept or decline) or accepted (decide)
    deadline: datetime | None
    deadline_text: str
    materials: list[str] = field(default_factory=list)
    documents: list[TaskDocument] = field(default_factory=list)

    @property
    def seconds_left(self) -> int:
        if self.deadline is None:
            return 0
        return max(0, int((self.deadline - datetime.now(UTC)).total_seconds()))

    @property
    def countdown(self) -> str:
        left = self.seconds_left
        if left <= 0:
            return "已到期"
        hours, rest = divmod(left, 3600)
        return f"剩余 {hours} 小时 {rest // 60} 分"


def _task(progress: Progress, offer: OfferView) -> Task:
    zone = zone_of(progress.region)
    pending = offer.status == OfferStatus.PENDING
    deadline = offer.accept_deadline if pending else offer.decision_deadline
    return Task(
        progress.application_id,
        disease_name(progress.region, progress.disease_code),
        STAGE_LABELS.get(offer.stage, str(offer.stage)),
        str(offer.status),
        deadline,
        local(deadline, zone),
    )


def _held_by(progress: Progress, expert: str) -> OfferView | None:
    offer = progress.current_offer
    if (
        offer is not None
        and offer.expert == expert
        and offer.status in (OfferStatus.PENDING, OfferStatus.ACCEPTED)
        and progress.finished_at is None
    ):
        return offer
    return None


OPEN_OFFERS = (OfferStatus.PENDING, OfferStatus.ACCEPTED)
_INBOX = (
    select(
        Offer,
        col(Application.region),
        col(Application.disease_code),
        select(Review.id)
        .where(
            col(Review.offer_id) == col(Offer.id),
            col(Review.decision) == ReviewDecision.REQUEST_MATERIALS,
        )
        .exists(),
    )
    .join(Application, col(Application.id) == col(Offer.application_id))
    .where(
        col(Offer.expert_code) == bindparam("expert"),
        or_(*(col(Offer.status) == status for status in OPEN_OFFERS)),
        col(Application.closed_at).is_(None),
        *(col(Application.status) != status for status in FINISHED),
    )
)
"""An expert's open offers with their application's region and disease, and whether the
offer asked for materials (no expanding IN lists: each of those is rewritten per call)."""


async def inbox(db: Database, client: Client, visitor: Visitor) -> list[Task]:
    """What the expert must accept, decline or decide now, soonest deadline first.

    Read from the business database (the ``offer`` rows the assignment activities write, and
    the application row), not from each workflow: a page of many tasks costs one query. The
    database trails the workflow by an activity at most — an answer the workflow took is in
    the row once ``answer_offer`` ran (:func:`act` waits for that, so the page after an action
    shows it). One thing only the workflow knows: after a materials round the decision
    deadline starts again, so an accepted offer that asked for materials is read from the
    workflow. Acting on a task still goes through the workflow (:func:`task`, :func:`act`).
    """
    code = visitor.expert_code
    if code is None:
        return []
    async with db.reading() as session:
        rows = (await session.execute(_INBOX, {"expert": code})).all()
    tasks = [
        _row_task(offer, region, disease) for offer, region, disease, asked in rows if not asked
    ]
    renewed = [offer.application_id for offer, _, _, asked in rows if asked]
    progress = await asyncio.gather(
        *(progress_of(client, i) for i in renewed), return_exceptions=True
    )
    for one in progress:
        if isinstance(one, Progress) and (held := _held_by(one, code)) is not None:
            tasks.append(_task(one, held))
    return sorted(tasks, key=lambda t: t.seconds_left)


def _row_task(offer: Offer, region: str, disease_code: str) -> Task:
    """A task from its ``offer`` row (the inbox), as :func:`_task` makes it from the workflow."""
    pending = offer.status == OfferStatus.PENDING
    deadline = offer.accept_deadline if pending else offer.decision_deadline
    return Task(
        offer.application_id,
        disease_name(region, disease_code),
        STAGE_LABELS.get(offer.stage, str(offer.stage)),
        str(offer.status),
        deadline,
        local(deadline, zone_of(region)),
    )


async def task(db: Database, client: Client, visitor: Visitor, application_id: str) -> Task:
    """One task of the expert, with its materials (NotYours unless offered to or held by them)."""
    code = visitor.expert_code
    if code is None:
        raise NotYours(application_id)
    try:
        progress = await progress_of(client, application_id)
    except CommandFailed:
        raise NotYours(application_id) from None
    offer = _held_by(progress, code)
    if offer is None:
        raise NotYours(application_id)
    async with db.session() as session:
        materials = (
            await session.exec(
                select(Material)
                .where(Material.application_id == application_id)
                .order_by(col(Material.round), col(Material.position))
            )
        ).all()
    found = _task(progress, offer)
    labels = [
        f"第{m.round}轮 · {MATERIAL_LABELS.get(m.kind, str(m.kind))} · {m.hospital_code} · "
        f"{m.issued_on.isoformat()}"
        for m in materials
    ]
    return Task(
        found.application_id,
        found.disease,
        found.stage,
        found.status,
        found.deadline,
        found.deadline_text,
        labels,
        [TaskDocument(text, m.sha256) for text, m in zip(labels, materials, strict=True)],
    )


async def task_document(
    db: Database,
    client: Client,
    store: DocumentStore,
    visitor: Visitor,
    application_id: str,
    sha256: str,
) -> tuple[Task, TaskDocument, bytes, Document]:
    """A material's scan, for the expert who is offered or holds the task (NotYours for
    anybody else and for a digest that is not one of the application's materials; NoScan for
    a material whose scan is not in the store). Reading it writes nothing to the process."""
    from chronic.documents import DocumentMissing

    held = await task(db, client, visitor, application_id)
    wanted = sha256.lower()
    document = next((d for d in held.documents if d.sha256 == wanted), None)
    if document is None:
        raise NotYours(application_id)
    try:
        data, described = await store.get(wanted)
    except DocumentMissing:
        raise NoScan(application_id) from None
    return held, document, data, described


async def shown_page(
    db: Database,
    client: Client,
    store: DocumentStore,
    visitor: Visitor,
    application_id: str,
    sha256: str,
    page: int,
) -> bytes:
    """Page ``page`` of a material as a PNG for the expert offered or holding the task (NotYours
    otherwise, and for a page it does not have); recorded in the audit trail as seen by them."""
    from chronic.documents import DocumentMissing, render_page_async

    _, _, data, described = await task_document(db, client, store, visitor, application_id, sha256)
    try:
        png = await render_page_async(data, described.media_type, page)
    except DocumentMissing:
        raise NotYours(application_id) from None
    async with db.session() as session:
        await record_as(
            session,
            visitor.actor,
            "hall_document_viewed",
            application_id,
            expert=visitor.expert_code,
            sha256=sha256,
            page=page,
        )
    return png


RECORDED_WITHIN = 5.0  # seconds an action waits for its row (the inbox and timeline read rows)


def _offer_status(application_id: str, expert: str) -> SelectOfScalar[OfferStatus]:
    """The status of the expert's latest offer on the application."""
    return (
        select(col(Offer.status))
        .where(Offer.application_id == application_id, Offer.expert_code == expert)
        .order_by(col(Offer.seq).desc())
        .limit(1)
    )


def _application_status(application_id: str) -> SelectOfScalar[ApplicationStatus]:
    return select(col(Application.status)).where(Application.id == application_id)


async def _recorded(db: Database, status: SelectOfScalar[Any], was: str) -> None:
    """Wait until the row read by ``status`` has left ``was`` (the activity after the
    workflow took the action ran), so the inbox or timeline after an action shows it; at most
    :data:`RECORDED_WITHIN` seconds — the row follows later in any case."""
    deadline = asyncio.get_running_loop().time() + RECORDED_WITHIN
    while True:
        async with db.session() as session:
            now = (await session.exec(status)).first()
        if now != was or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.1)


ACTIONS = ("accept", "decline", "approve", "reject", "request-materials")


async def act(
    db: Database,
    client: Client,
    visitor: Visitor,
    application_id: str,
    action: str,
    text: str | None = None,
) -> str:
    """Run one expert action as the signed-in expert; returns what to tell them.

    Raises:
        CommandFailed: the workflow's validator refused (its words), or the process is gone.
        NotYours: not an expert, or an unknown action.
    """
    code = visitor.expert_code
    if code is None or action not in ACTIONS:
        raise NotYours(application_id)
    text = (text or "").strip()
    if action == "accept":
        accepted = AcceptOffer(expert=code)
        await send_update(
            client, application_id, lambda h: h.execute_update(ApplicationWorkflow.accept, accepted)
        )
        await _recorded(db, _offer_status(application_id, code), OfferStatus.PENDING)
        said = "已受理，请在评审期限内作出评审意见。"
    elif action == "decline":
        declined = DeclineOffer(expert=code, reason=text or None)
        await send_update(
            client,
            application_id,
            lambda h: h.execute_update(ApplicationWorkflow.decline, declined),
        )
        await _recorded(db, _offer_status(application_id, code), OfferStatus.PENDING)
        said = "已不受理，系统将随机推送给其他专家。"
    elif action in ("approve", "reject"):
        decided = Decide(expert=code, approve=action == "approve", opinion=text)
        await send_update(
            client, application_id, lambda h: h.execute_update(ApplicationWorkflow.decide, decided)
        )
        await _recorded(db, _offer_status(application_id, code), OfferStatus.ACCEPTED)
        said = "已提交评审意见：" + ("通过" if action == "approve" else "不通过")
    else:
        asked = RequestMaterials(expert=code, note=text)
        await send_update(
            client,
            application_id,
            lambda h: h.execute_update(ApplicationWorkflow.request_materials, asked),
        )
        # The applicant's timeline reads the row: its resubmission form shows once it moved.
        await _recorded(db, _application_status(application_id), ApplicationStatus.IN_REVIEW)
        said = "已通知申请人补充材料。"
    async with db.session() as session:
        await record_as(
            session,
            visitor.actor,
            f"hall_{action.replace('-', '_')}",
            application_id,
            expert=code,
        )
    return said
