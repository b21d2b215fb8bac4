"""Submitting an application: record it in Postgres, commit, then start its workflow.

The application row and its materials are committed first, so the workflow never runs intake
before its row is visible. Then the workflow is started. If Temporal does not answer, the
committed row stays: the reconciler of the review worker (:mod:`chronic.reconciler`) starts
its workflow, with the same input (:func:`application_input`), as soon as Temporal answers.
If two clerks submit for the same person and disease at once, the partial unique index on
open applications lets exactly one row through. Personal data stays in the row (the address,
the inpatient number and a proxy's name, ID number and mobile too); the workflow gets the
application ID, the disease and an HMAC of the ID number.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from activities import audit
from chronic.db import Database
from chronic.policies import keep_edition
from chronic.privacy import applicant_key
from chronic.settings import Settings
from models.application import ApplicationForm
from models.domain import ApplicationStatus, HospitalGrade, ReviewStage, SubmittedBy
from models.messages import ApplicationInput, Progress
from models.policy import PolicyProfile
from models.tables import Application, Hospital, InsuredPerson, Material, Pharmacy
from workers import queues
from workflows.application import ApplicationWorkflow

_START_TIMEOUT = timedelta(seconds=10)
"""How long a start may wait for Temporal before the reconciler is left to do it."""
_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone
PROXY_ACTION = "submitted_by_proxy"
"""The audit action of an application a proxy (代办人) submitted: who, for whom (masked)."""


class StartDeferred(Exception):
    """The application is recorded, but Temporal did not answer: its workflow starts later.

    The reconciler of the review worker starts it as soon as Temporal answers; nothing has to
    be submitted again.
    """

    def __init__(self, application_id: str, cause: str) -> None:
        super().__init__(f"{application_id} recorded; its process did not start: {cause}")
        self.application_id = application_id
        self.cause = cause


class SubmissionRefused(Exception):
    """The application was not started; ``problems`` say why and what to do."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def new_application_id(now: datetime, zone: timezone) -> str:
    """``APP-20261123-7K3QF9``: the date of submission and six random characters."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
    return f"APP-{now.astimezone(zone):%Y%m%d}-{suffix}"


async def submit(
    form: ApplicationForm,
    *,
    client: Client | None,
    db: Database,
    settings: Settings,
    policy: PolicyProfile | None = None,
    search_attributes: bool = True,
    submitting_hospital: str | None = None,
    task_queue: str = queues.APPLICATIONS,
) -> str:
    """Record ``form``, commit, then start its workflow; returns the application ID.

    Args:
        submitting_hospital: the hospital whose desk submits it (a hall desk account's);
            unset, a form submitted by a hospital is the diagnosing hospital's desk's.
        policy: the rules to decide by; defaults to the region's profile (demos and tests
            pass one with shortened windows).
        search_attributes: False only against a server without the product's attributes.
        task_queue: the orchestration queue its workflow runs on (`chronic bench --open N
            --heap` gives its applications a worker of their own).
        client: None when Temporal could not be reached: the application is recorded and
            :class:`StartDeferred` raised.

    Raises:
        SubmissionRefused: unknown person or hospital, or an open application already exists;
            nothing was recorded.
        StartDeferred: the application is recorded (its ID in the error) but Temporal did not
            answer; the reconciler starts its workflow later.
    """
    policy = policy or settings.policy(form.region)
    zone = timezone(timedelta(hours=policy.timezone_offset_hours))
    now = datetime.now(UTC)
    application_id = new_application_id(now, zone)
    try:
        diagnosing = await _record(form, application_id, now, zone, db, policy, submitting_hospital)
    except _AlreadyOpen as already:
        # The failed transaction is rolled back by now; explain from a fresh one.
        raise SubmissionRefused(
            [await _already_open(db, already.person_id, form.disease_code)]
        ) from None
    request = application_input(
        application_id,
        policy=policy,
        disease_code=form.disease_code,
        id_number=form.applicant.id_number,
        submitted_at=now,
        settings=settings,
        search_attributes=search_attributes,
        diagnosing_hospital=form.diagnosing_hospital,
        diagnosed_at_grade_3a=is_grade_3a(diagnosing),
        out_of_area=form.out_of_area,
    )
    if client is None:
        raise StartDeferred(application_id, "Temporal could not be reached")
    try:
        await start_application(client, request, task_queue=task_queue)
    except (RPCError, RuntimeError) as error:
        # The row is committed: the reconciler starts the workflow once Temporal answers.
        raise StartDeferred(application_id, _plain(error)) from None
    return application_id


def application_input(
    application_id: str,
    *,
    policy: PolicyProfile,
    disease_code: str,
    id_number: str,
    submitted_at: datetime,
    settings: Settings,
    search_attributes: bool = True,
    diagnosing_hospital: str | None = None,
    diagnosed_at_grade_3a: bool = False,
    out_of_area: bool = False,
) -> ApplicationInput:
    """The start argument of an application's workflow (submission and the reconciler).

    The track is chosen here, where the register is at hand: Wuhan's track A needs the
    diagnosing hospital to be a 三甲 one.
    """
    case_rules = policy.for_case(disease_code)  # refuses a disease not in the catalogue
    [disease] = case_rules.catalogue
    track = policy.track_for(
        disease,
        diagnosed_at_grade_3a=diagnosed_at_grade_3a,
        out_of_area=out_of_area,
    )
    return ApplicationInput(
        application_id=application_id,
        policy=case_rules,
        disease_code=disease_code,
        applicant_key=applicant_key(id_number, settings),
        submitted_at=submitted_at,
        search_attributes=search_attributes,
        track=track.name,
        diagnosing_hospital=diagnosing_hospital,
    )


def is_grade_3a(hospital: Hospital) -> bool:
    """三级甲等: level 3, grade A."""
    return hospital.level == 3 and hospital.grade == HospitalGrade.A


async def start_application(
    client: Client, request: ApplicationInput, *, task_queue: str = queues.APPLICATIONS
) -> WorkflowHandle[ApplicationWorkflow, Progress]:
    """Start the workflow of a recorded application; at most one run per application, ever.

    ``REJECT_DUPLICATE`` keeps a finished application from being started a second time, and
    ``FAIL`` makes a second start of a running one raise
    :class:`~temporalio.exceptions.WorkflowAlreadyStartedError` (the reconciler ignores it).
    """
    application_id = request.application_id
    disease = request.policy.disease(request.disease_code)
    if disease is None:
        raise ValueError(
            f"disease {request.disease_code} is not in the {request.policy.region} catalogue"
        )
    return await client.start_workflow(
        ApplicationWorkflow.run,
        request,
        id=application_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        rpc_timeout=_START_TIMEOUT,
        static_summary=f"{application_id} · {request.policy.region} · {disease.code} "
        f"{disease.name}",
        static_details=(
            f"Application **{application_id}** for **{disease.name}** ({disease.code}, "
            f"category {disease.category}, "
            f"{'instant track' if disease.instant_track else 'two-stage review'}) "
            f"under the **{request.policy.name}** rules."
        ),
    )


def _plain(error: Exception) -> str:
    text = str(error).removeprefix("Failed client connect:").strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


class _AlreadyOpen(Exception):
    def __init__(self, person_id: int) -> None:
        self.person_id = person_id


async def _record(
    form: ApplicationForm,
    application_id: str,
    now: datetime,
    zone: timezone,
    db: Database,
    policy: PolicyProfile,
    submitting_hospital: str | None = None,
) -> Hospital:
    """Write the row and the first round of materials, and commit; returns the diagnosing
    hospital (its grade chooses the track)."""
    async with db.session() as session:
        person = await session.scalar(
            sa.select(InsuredPerson).where(col(InsuredPerson.id_number) == form.applicant.id_number)
        )
        hospitals = await _hospitals(session, form)
        problems = _unknown_hospitals(form, hospitals)
        problems += await _pharmacy_problems(session, form)
        if person is None:
            problems.insert(
                0,
                "applicant.id_number: no insured person with this ID number in the register; "
                "check the number, or register the person's insurance at the office first",
            )
        if problems:
            raise SubmissionRefused(problems)
        assert person is not None and person.id is not None
        person_id = person.id  # a failed flush expires the object; keep the plain value
        digest = await keep_edition(session, policy, now)
        session.add(
            Application(
                id=application_id,
                region=policy.region,
                person_id=person_id,
                disease_code=form.disease_code,
                year=now.astimezone(zone).year,
                status=ApplicationStatus.SUBMITTED,
                stage=ReviewStage.INTAKE,
                mobile=form.applicant.mobile,
                case_number=form.case_number,
                diagnosing_hospital_code=form.diagnosing_hospital,
                designated_hospital_code=form.designated_hospital,
                submitted_by=form.submitted_by,
                submitting_hospital_code=submitting_hospital
                or (
                    form.diagnosing_hospital if form.submitted_by == SubmittedBy.HOSPITAL else None
                ),
                submitted_at=now,
                out_of_area=form.out_of_area,
                policy_digest=digest,
                address=form.applicant.address,
                insured_district=form.applicant.insured_district,
                diagnosis_setting=form.diagnosis_setting,
                inpatient_number=form.inpatient_number,
                community_health_centre_code=form.community_health_centre,
                designated_pharmacy_code=form.designated_pharmacy,
                proxy_name=form.proxy.name if form.proxy else None,
                proxy_id_number=form.proxy.id_number if form.proxy else None,
                proxy_mobile=form.proxy.mobile if form.proxy else None,
            )
        )
        try:
            await session.flush()
        except IntegrityError as error:
            if "uq_application_open_per_person_disease" not in str(error.orig):
                raise
            raise _AlreadyOpen(person_id) from None
        session.add_all(
            Material(
                application_id=application_id,
                round=1,
                position=i,
                kind=m.kind,
                hospital_code=m.hospital,
                issued_on=m.issued_on,
                file_ref=m.file,
                sha256=m.sha256,
            )
            for i, m in enumerate(form.materials)
        )
        if form.proxy is not None:
            # Who submitted for whom; the clear values are on the application row.
            await audit.record(
                session,
                step_key=f"{application_id}:{PROXY_ACTION}",
                application_id=application_id,
                actor="proxy",
                action=PROXY_ACTION,
                at=now,
                proxy=form.proxy.masked().model_dump(),
                applicant=form.applicant.masked().model_dump(),
            )
        return hospitals[form.diagnosing_hospital]


def _named_hospitals(form: ApplicationForm) -> dict[str, str]:
    """Every hospital code the form names, by its path in the form."""
    centre = form.community_health_centre
    return {
        "diagnosing_hospital": form.diagnosing_hospital,
        "designated_hospital": form.designated_hospital,
        **({"community_health_centre": centre} if centre is not None else {}),
        **{f"materials[{i}].hospital": m.hospital for i, m in enumerate(form.materials)},
    }


async def _hospitals(session: AsyncSession, form: ApplicationForm) -> dict[str, Hospital]:
    """The register's rows of the hospitals the form names, by code (one query)."""
    codes = set(_named_hospitals(form).values())
    rows = await session.scalars(sa.select(Hospital).where(col(Hospital.code).in_(codes)))
    return {h.code: h for h in rows}


def _unknown_hospitals(form: ApplicationForm, known: dict[str, Hospital]) -> list[str]:
    wanted = _named_hospitals(form)
    return [
        f"{path}: no hospital with code {code} in the register; check the code with the "
        "hospital's insurance desk"
        for path, code in wanted.items()
        if code not in known
    ]


async def _pharmacy_problems(session: AsyncSession, form: ApplicationForm) -> list[str]:
    """Why the chosen pharmacy cannot be the application's (not in the register, or another
    region's for an applicant who lives in the region); empty when it can or none is named."""
    code = form.designated_pharmacy
    if code is None:
        return []
    pharmacy = await session.get(Pharmacy, code)
    if pharmacy is None:
        return [
            f"designated_pharmacy: no pharmacy with code {code} in the pharmacy register; "
            "check the code on the office's list of designated pharmacies (定点药店)"
        ]
    if pharmacy.region != form.region and not form.out_of_area:
        return [
            f"designated_pharmacy: {code} ({pharmacy.name}) is a designated pharmacy of "
            f"{pharmacy.region}, not of {form.region}: choose one of {form.region}'s list"
        ]
    return []


async def _already_open(db: Database, person_id: int, disease_code: str) -> str:
    async with db.session() as session:
        open_one = await session.scalar(
            sa.select(Application).where(
                col(Application.person_id) == person_id,
                col(Application.disease_code) == disease_code,
                col(Application.closed_at).is_(None),
            )
        )
    which = f"{open_one.id} ({open_one.status})" if open_one else "another application"
    return (
        f"this person already has an open application for {disease_code}: {which}. "
        f"Follow it with `chronic status {open_one.id if open_one else 'APP'}`; a new one can be "
        "submitted once it is decided or closed"
    )
