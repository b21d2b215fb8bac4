"""What travels through Temporal: workflow input, update arguments, activity calls, progress.

Pure pydantic and workflow-safe. Nothing here carries personal data: the applicant appears as
an internal person id and an HMAC key; names, ID numbers and mobiles stay in the database,
where activities look them up.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.domain import (
    ApplicationStatus,
    HospitalGrade,
    MaterialKind,
    OfferStatus,
    ReviewDecision,
    ReviewStage,
)
from models.policy import PolicyProfile, shared


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class MaterialItem(_Message):
    """One document of a submission or resubmission (no personal data: codes, dates, hashes)."""

    kind: MaterialKind
    hospital: str
    issued_on: date
    file: str
    sha256: str


SharedPolicy = Annotated[PolicyProfile, AfterValidator(shared)]
"""A profile decoded into the process's one instance equal to it (:func:`models.policy.shared`).
The SDK keeps a workflow's start argument for as long as the run is cached: decoded this way,
thousands of cached applications of one region hold no copy of their own."""


class ApplicationInput(_Message):
    """Start argument of the application workflow; the record itself is already in Postgres."""

    application_id: str
    policy: SharedPolicy = Field(
        description="The rules in force at submission, the catalogue cut to the disease "
        "(`PolicyProfile.for_case`); earlier runs carry the whole edition."
    )
    disease_code: str
    applicant_key: str = Field(description="HMAC of the ID number, for the ApplicantKey filter.")
    submitted_at: datetime
    search_attributes: bool = Field(
        default=True,
        description="Publish the product's search attributes. False only on a server that "
        "cannot register them (the time-skipping test server).",
    )
    resume: ApplicationState | None = Field(
        default=None, description="Carried over by continue-as-new; None on the first run."
    )
    track: str | None = Field(
        default=None,
        description="The policy track chosen at submission (it needs the register: the "
        "diagnosing hospital's grade); None before tracks existed: chosen by the disease.",
    )
    diagnosing_hospital: str | None = Field(
        default=None, description="Code of the hospital that diagnosed (it assesses on track A)."
    )


# ---- intake -----------------------------------------------------------------------------------


class IntakeOutcome(_Message):
    """Result of the intake checks on one round of materials."""

    accepted: bool
    refused: bool = Field(
        default=False,
        description="True when no resubmission can help (insurance status, quota, catalogue).",
    )
    reasons: tuple[str, ...] = ()


class IntakeRequest(_Message):
    application_id: str
    round: int
    policy: PolicyProfile
    checked_at: datetime
    requires_long_term_filing: bool = Field(
        default=False,
        description="The track asks an out-of-area applicant for a valid long-term filing.",
    )


class MaterialsRound(_Message):
    application_id: str
    round: int
    materials: tuple[MaterialItem, ...]


class SlaRequest(_Message):
    start: datetime
    working_days: int
    application_id: str | None = Field(
        default=None,
        description="When set, the activity also records the provisional mark on this "
        "application's row.",
    )


class SlaDue(_Message):
    """The SLA target, and whether it was counted without the official holidays of a year."""

    due_at: datetime
    provisional: bool = Field(
        description="A day counted lies in a year with neither chinese-calendar data nor an "
        "entry in the office's holidays file (statutory holidays by rule, no make-up workdays)."
    )
    provisional_years: tuple[int, ...] = ()


class HospitalRef(_Message):
    """What intake's material rules need of one registered hospital (no personal data)."""

    code: str
    level: int
    public: bool
    grade: HospitalGrade | None = Field(
        default=None,
        description="甲/乙/丙 within the level; None in registers read before grades were "
        "carried (not checked then).",
    )


class MaterialsRecorded(_Message):
    """The outcome of recording a round: stored, or refused with the reasons."""

    stored: int = 0
    problems: tuple[str, ...] = ()


# ---- assignment -------------------------------------------------------------------------------


class DrawRequest(_Message):
    """Draw one expert for a stage; ``seq`` makes a retried draw return the same offer.

    The offer is made when its row is recorded: the accept window counts from then.
    """

    application_id: str
    seq: int
    stage: ReviewStage
    category: str
    exclude_experts: tuple[str, ...] = Field(
        default=(), description="Reviewers of the other stages of this application."
    )
    accept_window: timedelta
    expert: str | None = Field(
        default=None, description="Assigned by hand by the office (pool exhausted)."
    )
    actor: str = "system"


class OfferMade(_Message):
    offer_id: int
    seq: int
    expert_code: str
    pool_size: int
    offered_at: datetime
    accept_deadline: datetime


class DrawResult(_Message):
    """The offer made, or None when no expert is eligible right now."""

    offer: OfferMade | None = None
    problem: str | None = Field(
        default=None, description="Why a hand assignment could not be made."
    )


class OfferAnswer(_Message):
    """What became of an offer: accepted, declined, lapsed, decision lapsed, or completed."""

    offer_id: int
    status: OfferStatus
    at: datetime
    reason: str | None = None
    decision_deadline: datetime | None = None
    strikes_to_disqualify: int = 3
    deadline: datetime | None = Field(
        default=None,
        description="For a lapse: the deadline that passed. Recorded later than "
        "``outage_grace`` after it means our system was down: withdrawn, no strike.",
    )
    outage_grace: timedelta = timedelta(minutes=15)


class StrikeOutcome(_Message):
    expert_code: str
    consecutive_strikes: int
    disqualified: bool
    hospital_code: str
    status: OfferStatus | None = Field(
        default=None, description="What was recorded (a late lapse becomes withdrawn)."
    )
    reason: str | None = None
    disqualified_at: datetime | None = None
    open_offers_elsewhere: tuple[str, ...] = Field(
        default=(),
        description="Applications where a just-disqualified expert still holds an offer.",
    )


# ---- review -----------------------------------------------------------------------------------


class ReviewRecord(_Message):
    application_id: str
    offer_id: int
    seq: int
    stage: ReviewStage
    expert_code: str
    decision: ReviewDecision
    opinion: str
    decided_at: datetime
    completes_offer: bool = Field(
        default=False,
        description="A decision that ends its offer: the offer is marked completed in the same "
        "transaction (runs before the change ended it with answer_offer, a second step).",
    )


CLOSE_SEQ = 1_000_000
"""Status seq of a close made outside the workflow (reconciler, operator): above any it writes."""


class StatusChange(_Message):
    """Moves the application row (and the audit trail) to a new status."""

    application_id: str
    status: ApplicationStatus
    stage: ReviewStage
    at: datetime
    step: str = Field(description="Unique per workflow step: makes the write idempotent.")
    seq: int = Field(
        default=0,
        description="Order of the write: applied only when greater than the row's status_seq, "
        "so a late retry never overwrites a newer status. The workflow counts 1, 2, …; the "
        "reconciler and operators' closes use CLOSE_SEQ.",
    )
    actor: str = "system"
    reason: str | None = None
    closed: bool = False
    detail: dict[str, str] = Field(
        default_factory=dict, description="More for the audit event (a designated hospital …)."
    )


class OfficeNoticeRequest(_Message):
    """A notice to the office's desk (no personal data)."""

    step_key: str
    application_id: str | None
    kind: str
    message: str
    at: datetime
    resolved: bool = False


class BenefitRequest(_Message):
    application_id: str
    approved_on: date
    validity_days: int | None


class BenefitIssued(_Message):
    valid_from: date
    valid_to: date | None
    designated_hospital_name: str


# ---- updates (expert and clerk actions) ---------------------------------------------------------


class AcceptOffer(_Message):
    expert: str


# Update arguments take any text: the update's validator applies models.text and answers in
# plain words, where a failed decoding would only say "Failed decoding arguments".


class DeclineOffer(_Message):
    expert: str
    reason: str | None = None


class Decide(_Message):
    expert: str
    approve: bool
    opinion: str = ""


class RequestMaterials(_Message):
    expert: str
    note: str


class Resubmission(_Message):
    materials: tuple[MaterialItem, ...] = Field(min_length=1)
    note: str | None = Field(default=None, description="The clerk's note on this round.")


class OfficeAccept(_Message):
    """A clerk accepts the application (受理) and designates who assesses it."""

    clerk: str = Field(min_length=1, max_length=64)
    hospital: str | None = Field(
        None,
        description="The assessment hospital the applicant visits (track B); on track A "
        "the diagnosing hospital assesses and this may be left out.",
    )


class OfficeReturn(_Message):
    """A clerk returns the application with the reasons (退回); it may be resubmitted."""

    clerk: str = Field(min_length=1, max_length=64)
    reasons: str


class ScheduleExamination(_Message):
    """The assessment hospital asks the applicant in for an on-site examination."""

    hospital: str
    at: datetime
    place: str


class HospitalOpinion(_Message):
    """The assessment hospital's opinion (鉴定意见), from the records or the examination."""

    hospital: str
    approve: bool
    opinion: str = ""


class OfficeConfirm(_Message):
    """The office confirms the opinion (registers, issues the benefit) or refuses."""

    clerk: str = Field(min_length=1, max_length=64)
    confirm: bool
    reason: str = ""


class CloseApplication(_Message):
    """The office ends an application without a decision (``chronic admin close``)."""

    actor: str = Field(min_length=1, max_length=64)
    reason: str


class AssignExpert(_Message):
    """The office offers an application to a named expert (the pool is exhausted)."""

    actor: str = Field(min_length=1, max_length=64)
    expert: str = Field(min_length=1, max_length=16)


class WithdrawOffer(_Message):
    """Signal: take back an expert's open offer without a strike (disqualified elsewhere)."""

    expert: str
    reason: str


# ---- progress (query) -------------------------------------------------------------------------


class OfferView(_Message):
    offer_id: int = 0
    seq: int
    stage: ReviewStage
    expert: str
    pool_size: int
    status: OfferStatus
    offered_at: datetime
    accept_deadline: datetime
    decision_deadline: datetime | None = None
    answered_at: datetime | None = None
    reason: str | None = None


class DecisionView(_Message):
    stage: ReviewStage
    expert: str
    decision: ReviewDecision
    opinion: str
    at: datetime


class Progress(_Message):
    """Everything `chronic status` shows; also the workflow's query result."""

    application_id: str
    region: str
    disease_code: str
    status: ApplicationStatus
    stage: ReviewStage
    submitted_at: datetime
    sla_due_at: datetime | None = None
    sla_breached: bool = False
    waiting_for: str = Field(description="One line: what happens next, and until when.")
    current_offer: OfferView | None = None
    offers: tuple[OfferView, ...] = ()
    decisions: tuple[DecisionView, ...] = ()
    reasons: tuple[str, ...] = Field(default=(), description="Return / refusal reasons.")
    resubmission_deadline: datetime | None = None
    materials_round: int = 1
    benefit: BenefitIssued | None = None
    finished_at: datetime | None = None
    sla_provisional: bool = Field(
        default=False, description="The SLA target was counted without the official holidays."
    )
    pool_exhausted_since: datetime | None = None
    alerts: tuple[str, ...] = Field(default=(), description="What the office must act on.")
    track: str | None = Field(default=None, description="The policy track it follows.")
    assessment_hospital: str | None = Field(
        default=None, description="The hospital that assesses it (office acceptance)."
    )
    examination: ScheduleExamination | None = Field(
        default=None, description="The on-site examination the hospital arranged."
    )


class ApplicationState(_Message):
    """What a continued-as-new run carries over: where the application stands."""

    status: ApplicationStatus
    stage: ReviewStage
    round: int
    status_seq: int
    returned: bool
    sla_due_at: datetime | None
    sla_breached: bool
    sla_provisional: bool
    offers: tuple[OfferView, ...]
    decisions: tuple[DecisionView, ...]
    pool_exhausted_since: datetime | None
    notices: int = 0
    steps_done: int | None = Field(
        default=None,
        description="Steps of the track finished in earlier runs; None (older runs): intake.",
    )


ApplicationInput.model_rebuild()
