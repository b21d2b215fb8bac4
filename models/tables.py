"""The business database: SQLModel tables of the domain.

Imported by activities, the CLI and migrations only — never by workflow code (the workflow
sandbox would re-import SQLAlchemy on every activation and trip over "Table already defined").

Personal data (names, ID numbers, mobiles) lives here, in the insurance office's own database,
and nowhere in Temporal. Workflow-facing rows are keyed by the application ID and a step so
that activities can be retried without writing twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

from models.domain import (
    ApplicationStatus,
    ExpertStatus,
    ExpertTitle,
    FilingStatus,
    FilingType,
    FilingUploadKind,
    HospitalGrade,
    InsuranceStatus,
    InsuranceType,
    MaterialKind,
    OfferStatus,
    ReviewDecision,
    ReviewStage,
    SmsStatus,
)

# Constraint names follow one convention so Alembic autogenerate and downgrades agree.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _timestamp(*, nullable: bool = False, index: bool = False) -> Any:
    """A timezone-aware timestamp column (all times are stored in UTC)."""
    column = sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


def _enum(enum: type, *, index: bool = False) -> Any:
    """Enums are stored as their values in a plain VARCHAR (no Postgres ENUM type to migrate)."""
    return Field(sa_type=sa.String(32), index=index)


class Hospital(SQLModel, table=True):
    """A medical institution: issues materials, employs experts, is a designated hospital."""

    __tablename__ = "hospital"

    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    level: int = Field(ge=1, le=3, description="1, 2 or 3 (一级/二级/三级).")
    grade: HospitalGrade = _enum(HospitalGrade)
    public: bool = True
    region: str = Field(max_length=32, index=True)
    notice_mobile: str | None = Field(
        default=None, max_length=20, description="Insurance desk: disqualification notices."
    )


class Pharmacy(SQLModel, table=True):
    """A designated retail pharmacy (定点药店) an applicant may choose for the benefit."""

    __tablename__ = "pharmacy"

    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    region: str = Field(max_length=32, index=True)


class InsuredPerson(SQLModel, table=True):
    """参保人: the office's insurance register."""

    __tablename__ = "insured_person"

    id: int | None = Field(default=None, primary_key=True)
    id_number: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=40)
    mobile: str = Field(max_length=20)
    insurance_type: InsuranceType = _enum(InsuranceType)
    insurance_status: InsuranceStatus = _enum(InsuranceStatus)
    region: str = Field(max_length=32, index=True)


class SettlementMonth(SQLModel, table=True):
    """A month in which the person had normal settlements (renewal needs 6 of the last 12)."""

    __tablename__ = "settlement_month"

    person_id: int = Field(foreign_key="insured_person.id", primary_key=True)
    month: date = Field(primary_key=True, description="First day of the month.")
    settlements: int = Field(ge=1)
    amount_cents: int = Field(ge=0)


class Disease(SQLModel, table=True):
    """A catalogue entry (病种), mirrored from the region's policy profile."""

    __tablename__ = "disease"

    region: str = Field(primary_key=True, max_length=32)
    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    category: str = Field(max_length=32, index=True)
    instant_track: bool = False


class Expert(SQLModel, table=True):
    """A reviewing doctor of the expert pool (专家库)."""

    __tablename__ = "expert"

    code: str = Field(primary_key=True, max_length=16, description="Staff code, e.g. E042.")
    name: str = Field(max_length=40)
    hospital_code: str = Field(foreign_key="hospital.code", index=True)
    title: ExpertTitle = _enum(ExpertTitle)
    categories: list[str] = Field(
        sa_column=sa.Column(postgresql.ARRAY(sa.String(32)), nullable=False),
        description="Disease categories this expert reviews.",
    )
    status: ExpertStatus = _enum(ExpertStatus, index=True)
    consecutive_strikes: int = Field(default=0, ge=0)
    disqualified_at: datetime | None = _timestamp(nullable=True)
    region: str = Field(max_length=32, index=True)
    mobile: str | None = Field(
        default=None,
        max_length=20,
        description="Where the offer of a task and its reminder are sent (E.164).",
    )


class Application(SQLModel, table=True):
    """One request by one person for one disease (申报)."""

    __tablename__ = "application"
    __table_args__ = (
        # One open application per person and disease: the race-free guard for submission.
        sa.Index(
            "uq_application_open_per_person_disease",
            "person_id",
            "disease_code",
            unique=True,
            postgresql_where=sa.text("closed_at IS NULL"),
        ),
        sa.Index("ix_application_person_disease_year", "person_id", "disease_code", "year"),
    )

    id: str = Field(primary_key=True, max_length=32, description="Also the workflow ID.")
    region: str = Field(max_length=32)
    person_id: int = Field(foreign_key="insured_person.id")
    disease_code: str = Field(max_length=16)
    year: int = Field(description="Calendar year of submission (quota is per year).")
    status: ApplicationStatus = _enum(ApplicationStatus, index=True)
    stage: ReviewStage = _enum(ReviewStage)
    mobile: str = Field(max_length=20, description="Contact mobile given on the form.")
    case_number: str = Field(max_length=40)
    diagnosing_hospital_code: str = Field(foreign_key="hospital.code")
    designated_hospital_code: str = Field(foreign_key="hospital.code")
    submitted_by: str = Field(default="applicant", max_length=16)
    submitting_hospital_code: str | None = Field(
        default=None,
        foreign_key="hospital.code",
        index=True,
        description="The hospital whose desk submitted it (submitted_by = hospital, 辅助申报).",
    )
    submitted_at: datetime = _timestamp()
    closed_at: datetime | None = _timestamp(nullable=True)
    outcome_reason: str | None = Field(default=None, max_length=2000)
    status_seq: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="Order of status writes: a late retry never overwrites a newer one.",
    )
    sla_provisional: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": sa.false()},
        description="The SLA target was counted without the official holiday list of its year.",
    )
    out_of_area: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": sa.false()},
        description="The applicant lives outside the region (异地): it chose the track.",
    )
    policy_digest: str | None = Field(
        default=None,
        foreign_key="policy_version.digest",
        max_length=64,
        description="The edition of the rules it is decided by (None: recorded before "
        "editions were kept).",
    )
    # What a region's form asks beyond the common fields (policy: PolicyProfile.form). The
    # address, inpatient number and proxy are personal data: they stay here, out of Temporal.
    address: str | None = Field(default=None, max_length=200, description="现住址.")
    insured_district: str | None = Field(default=None, max_length=40, description="参保辖区.")
    diagnosis_setting: str | None = Field(
        default=None, max_length=16, description="outpatient (门诊确诊) or inpatient (住院确诊)."
    )
    inpatient_number: str | None = Field(default=None, max_length=40, description="住院号.")
    community_health_centre_code: str | None = Field(default=None, foreign_key="hospital.code")
    designated_pharmacy_code: str | None = Field(default=None, foreign_key="pharmacy.code")
    proxy_name: str | None = Field(
        default=None, max_length=40, description="The proxy (代办人) who submitted, if any."
    )
    proxy_id_number: str | None = Field(default=None, max_length=18)
    proxy_mobile: str | None = Field(default=None, max_length=20)


class Material(SQLModel, table=True):
    """An uploaded document (申报材料); each resubmission adds a new round."""

    __tablename__ = "material"
    __table_args__ = (sa.UniqueConstraint("application_id", "round", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: str = Field(foreign_key="application.id", index=True)
    round: int = Field(default=1, ge=1, description="1 = original submission, 2+ = resubmitted.")
    position: int = Field(ge=0)
    kind: MaterialKind = _enum(MaterialKind)
    hospital_code: str = Field(foreign_key="hospital.code")
    issued_on: date
    file_ref: str = Field(max_length=500)
    sha256: str = Field(max_length=64)


class Offer(SQLModel, table=True):
    """A review task pushed at random to one expert (随机推送), with its accept window."""

    __tablename__ = "offer"
    __table_args__ = (sa.UniqueConstraint("application_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: str = Field(foreign_key="application.id", index=True)
    seq: int = Field(ge=1, description="1, 2, … in the order offers were made.")
    stage: ReviewStage = _enum(ReviewStage)
    expert_code: str = Field(foreign_key="expert.code", index=True)
    pool_size: int = Field(ge=1, description="Eligible experts the draw was made from.")
    candidates: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(postgresql.JSONB, nullable=False, server_default="[]"),
        description="The eligible experts' codes, sorted: the pool of the draw.",
    )
    draw_seed: str | None = Field(
        default=None,
        max_length=64,
        description="HMAC of the application and offer number under the office's draw key; "
        "None for an expert named by the office (models/draw.py).",
    )
    status: OfferStatus = _enum(OfferStatus, index=True)
    offered_at: datetime = _timestamp()
    accept_deadline: datetime = _timestamp()
    answered_at: datetime | None = _timestamp(nullable=True)
    decision_deadline: datetime | None = _timestamp(nullable=True)
    decline_reason: str | None = Field(default=None, max_length=500)


class Review(SQLModel, table=True):
    """An expert's decision on one stage (初审 / 复审 / 终审)."""

    __tablename__ = "review"
    __table_args__ = (sa.UniqueConstraint("offer_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: str = Field(foreign_key="application.id", index=True)
    offer_id: int = Field(foreign_key="offer.id")
    seq: int = Field(default=1, ge=1, description="A materials request and the later decision.")
    stage: ReviewStage = _enum(ReviewStage)
    expert_code: str = Field(foreign_key="expert.code")
    decision: ReviewDecision = _enum(ReviewDecision)
    opinion: str = Field(default="", max_length=2000)
    decided_at: datetime = _timestamp()


class ExpertReport(SQLModel, table=True):
    """A hospital's monthly statistic of its experts (seed 002, 五), as sent to it."""

    __tablename__ = "expert_report"
    __table_args__ = (sa.UniqueConstraint("region", "month", "hospital_code"),)

    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(max_length=32)
    month: str = Field(max_length=7, description="YYYY-MM in the region's local time.")
    hospital_code: str = Field(foreign_key="hospital.code", index=True)
    csv: str = Field(sa_type=sa.Text, description="Each expert's line (chronic.reports.experts).")
    created_at: datetime = _timestamp()


class AuditSample(SQLModel, table=True):
    """A period's audit sample (抽审) of approvals, with what it takes to redraw it."""

    __tablename__ = "audit_sample"
    __table_args__ = (sa.UniqueConstraint("region", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(max_length=32)
    period: str = Field(max_length=7, description="YYYY-MM: approvals of that local month.")
    rate: float = Field(description="The policy's share at the time of the draw.")
    seed: str = Field(max_length=64, description="HMAC under the office's draw key.")
    population: list[str] = Field(
        sa_column=sa.Column(postgresql.JSONB, nullable=False),
        description="The period's approved applications, sorted: what the sample came from.",
    )
    drawn_at: datetime = _timestamp()


class AuditTask(SQLModel, table=True):
    """One sampled application to re-check: the office finds its records sound or forged."""

    __tablename__ = "audit_task"
    __table_args__ = (sa.UniqueConstraint("sample_id", "application_id"),)

    id: int | None = Field(default=None, primary_key=True)
    sample_id: int = Field(foreign_key="audit_sample.id", index=True)
    application_id: str = Field(foreign_key="application.id", index=True)
    status: str = Field(default="open", max_length=16, description="open, ok or forged.")
    note: str | None = Field(default=None, max_length=500)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = _timestamp(nullable=True)
    revoked_from: date | None = Field(
        default=None, description="Forged: the benefit is revoked from this date."
    )


class PolicyVersion(SQLModel, table=True):
    """An edition of a region's rules, kept by content for as long as a case refers to it."""

    __tablename__ = "policy_version"

    digest: str = Field(primary_key=True, max_length=64, description="SHA-256 of the profile.")
    region: str = Field(max_length=32, index=True)
    version: str = Field(max_length=32, description="The office's label of the edition.")
    profile: dict[str, Any] = Field(
        sa_column=sa.Column(postgresql.JSONB, nullable=False),
        description="The whole profile as JSON (PolicyProfile).",
    )
    first_used_at: datetime = _timestamp()


class Settlement(SQLModel, table=True):
    """A month of a person's outpatient chronic-benefit settlements, as the settlement system
    reports it (`chronic settlement import`): the renewal check counts the normal months."""

    __tablename__ = "settlement"
    __table_args__ = (sa.UniqueConstraint("person_id", "disease_code", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="insured_person.id", index=True)
    disease_code: str = Field(max_length=16)
    month: date = Field(description="The first day of the month settled.")
    normal: bool = Field(description="Settled normally (not refused, reversed or suspended).")
    imported_at: datetime = _timestamp()


class Benefit(SQLModel, table=True):
    """The benefit certificate (待遇认定表) of an approved application."""

    __tablename__ = "benefit"

    id: int | None = Field(default=None, primary_key=True)
    application_id: str = Field(foreign_key="application.id", unique=True)
    person_id: int = Field(foreign_key="insured_person.id", index=True)
    disease_code: str = Field(max_length=16)
    designated_hospital_code: str = Field(foreign_key="hospital.code")
    valid_from: date
    valid_to: date | None = Field(default=None, description="None = long-term.")
    status: str = Field(default="active", max_length=16)
    pharmacy_code: str | None = Field(
        default=None, max_length=16, description="The designated pharmacy, once one is chosen."
    )
    in_hospital_since: date | None = Field(
        default=None, description="Admitted and not discharged yet (Jilin: suspended)."
    )
    event_seq: int = Field(
        default=0, ge=0, description="The last benefit_event applied (ordered writes)."
    )


class BenefitEventRow(SQLModel, table=True):
    """One thing that happened to a benefit: a designation changed, a hospital stay, its end.

    Written by the benefit's workflow (``record_benefit_event``) once per ``seq``.
    """

    __tablename__ = "benefit_event"
    __table_args__ = (sa.UniqueConstraint("application_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: str = Field(foreign_key="benefit.application_id", index=True)
    seq: int = Field(ge=1)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16, description="The benefit's status after the event.")
    on_date: date | None = Field(default=None, description="Admission or discharge day.")
    from_code: str | None = Field(default=None, max_length=16)
    to_code: str | None = Field(default=None, max_length=16)
    actor: str = Field(max_length=64)
    at: datetime = _timestamp()


class SmsOutbox(SQLModel, table=True):
    """Every SMS, written before the provider is called; the dedup key makes sends idempotent."""

    __tablename__ = "sms_outbox"

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=200, unique=True)
    application_id: str | None = Field(default=None, max_length=32, index=True)
    filing_id: str | None = Field(
        default=None, max_length=32, index=True, description="A message about a filing."
    )
    template: str = Field(max_length=64)
    recipient: str = Field(max_length=20)
    params: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(postgresql.JSONB, nullable=False)
    )
    status: SmsStatus = _enum(SmsStatus, index=True)
    gateway: str = Field(max_length=32)
    provider_message_id: str | None = Field(default=None, max_length=100)
    attempts: int = Field(default=0, ge=0)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _timestamp()
    sent_at: datetime | None = _timestamp(nullable=True)


class AuditEvent(SQLModel, table=True):
    """Who did what, when (审计). The step key makes a retried activity write once."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    step_key: str = Field(max_length=200, unique=True)
    application_id: str | None = Field(default=None, max_length=32, index=True)
    filing_id: str | None = Field(default=None, max_length=32, index=True)
    actor: str = Field(max_length=64, description="system, clerk, expert:E042, hospital:H01 …")
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(postgresql.JSONB, nullable=False)
    )
    at: datetime = _timestamp(index=True)


class OfficeNotice(SQLModel, table=True):
    """Something the office's desk must act on (an exhausted expert pool, a stuck case)."""

    __tablename__ = "office_notice"

    id: int | None = Field(default=None, primary_key=True)
    step_key: str = Field(max_length=200, unique=True, description="Written once per cause.")
    application_id: str | None = Field(default=None, max_length=32, index=True)
    kind: str = Field(max_length=32, index=True)
    message: str = Field(max_length=2000)
    at: datetime = _timestamp(index=True)
    resolved_at: datetime | None = _timestamp(nullable=True)


class FilingRecord(SQLModel, table=True):
    """An out-of-area care filing (异地就医备案, seed 001); the ID is also the workflow ID.

    The applicant's name and ID number are the register's (``person_id``); the row keeps what
    the register does not have: the mobile given on the form (the result SMS goes to it) and
    the contact person.
    """

    __tablename__ = "filing"
    __table_args__ = (
        # One filing in progress per person: the race-free guard of submission.
        sa.Index(
            "uq_filing_open_per_person",
            "person_id",
            unique=True,
            postgresql_where=sa.text("closed_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=32, description="FIL-YYYYMMDD-XXXXXX.")
    person_id: int = Field(foreign_key="insured_person.id", index=True)
    mobile: str = Field(max_length=20, description="Mobile given on the form (E.164).")
    insured_place: str = Field(max_length=6, description="Code of the insured place (参保地).")
    destination_province: str = Field(max_length=20)
    destination_city: str = Field(max_length=40)
    insurance_type: InsuranceType = _enum(InsuranceType)
    filing_type: FilingType = _enum(FilingType)
    start_date: date
    end_date: date | None = None
    contact_name: str = Field(max_length=40)
    contact_mobile: str = Field(max_length=20)
    status: FilingStatus = _enum(FilingStatus, index=True)
    status_seq: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="Order of status writes: a late retry never overwrites a newer one.",
    )
    reasons: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(postgresql.JSONB, nullable=False, server_default="[]"),
        description="Why it was refused or closed.",
    )
    valid_from: date | None = None
    valid_to: date | None = Field(default=None, description="None = long-term.")
    submitted_at: datetime = _timestamp()
    closed_at: datetime | None = _timestamp(nullable=True)
    expired_at: datetime | None = _timestamp(nullable=True)


class FilingUpload(SQLModel, table=True):
    """A document uploaded with a filing (备案材料: ID card, admission certificate …)."""

    __tablename__ = "filing_upload"
    __table_args__ = (sa.UniqueConstraint("filing_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    filing_id: str = Field(foreign_key="filing.id", index=True)
    position: int = Field(ge=0)
    kind: FilingUploadKind = _enum(FilingUploadKind)
    file_ref: str = Field(max_length=500)
    sha256: str = Field(max_length=64)


class HallUser(SQLModel, table=True):
    """An account of the online service hall (staff; applicants sign in with an SMS code).

    An expert's account is bound to their staff code; the password is an argon2 hash.
    """

    __tablename__ = "hall_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=32, unique=True)
    role: str = Field(max_length=16, description="expert, hospital, clerk or operator.")
    expert_code: str | None = Field(
        default=None, foreign_key="expert.code", max_length=16, unique=True
    )
    hospital_code: str | None = Field(default=None, foreign_key="hospital.code", max_length=16)
    password_hash: str = Field(max_length=200)
    disabled: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = _timestamp()
    password_changed_at: datetime = _timestamp()
    totp_secret: str | None = Field(
        default=None,
        max_length=400,
        description="The TOTP secret, sealed (chronic.sms.sealed); set at enrolment.",
    )
    totp_confirmed_at: datetime | None = _timestamp(nullable=True)
    totp_last_step: int | None = Field(
        default=None,
        sa_type=sa.BigInteger,
        description="The last TOTP time step accepted: a code works once.",
    )


class HallSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the row only its SHA-256."""

    __tablename__ = "hall_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    person_id: int | None = Field(default=None, foreign_key="insured_person.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="hall_user.id", index=True)
    created_at: datetime = _timestamp()
    expires_at: datetime = _timestamp(index=True)


class SignInCode(SQLModel, table=True):
    """A one-time sign-in code sent by SMS; only its keyed hash is kept."""

    __tablename__ = "sign_in_code"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="insured_person.id", index=True)
    code_hash: str = Field(max_length=64)
    created_at: datetime = _timestamp()
    expires_at: datetime = _timestamp()
    attempts: int = Field(default=0, ge=0)
    used_at: datetime | None = _timestamp(nullable=True)


class HallThrottle(SQLModel, table=True):
    """One counted request (a code asked for, a wrong code or password), by a keyed hash of
    the ID number, username or address it came from, for the hall's rate limits."""

    __tablename__ = "hall_throttle"
    __table_args__ = (sa.Index("ix_hall_throttle_kind_key_at", "kind", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    key: str = Field(max_length=64)
    at: datetime = _timestamp()


__all__ = [
    "Application",
    "AuditEvent",
    "Benefit",
    "Disease",
    "Expert",
    "FilingRecord",
    "FilingUpload",
    "HallSession",
    "HallThrottle",
    "HallUser",
    "Hospital",
    "InsuredPerson",
    "Material",
    "Offer",
    "OfficeNotice",
    "Pharmacy",
    "Review",
    "SettlementMonth",
    "SignInCode",
    "SmsOutbox",
]
