"""The benefit after approval, as it travels through Temporal (issue 12, first part).

Pure pydantic and workflow-safe. A benefit is known by its application ID (its workflow ID is
``benefit-<application id>``); the person appears only as the HMAC ``applicant_key``. Names, ID
numbers and mobiles stay in the database, where activities look them up.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.policy import PolicyProfile

WORKFLOW_TYPE = "BenefitWorkflow"
"""The workflow type name (the UI's ``WorkflowType`` filter)."""


def workflow_id(application_id: str) -> str:
    """``benefit-<application id>``: the benefit's workflow ID (no personal data)."""
    return f"benefit-{application_id}"


class BenefitStatus(StrEnum):
    """Where a benefit stands."""

    ACTIVE = "active"
    SUSPENDED = "suspended"  # in hospital (Jilin): no outpatient benefit meanwhile
    ENDED = "ended"  # its validity ran out (and it was not renewed)
    REVOKED = "revoked"  # taken back (an audit finding, seed 002 rule 12)


class DesignationKind(StrEnum):
    """What a person may change: the designated hospital or the designated pharmacy."""

    HOSPITAL = "hospital"
    PHARMACY = "pharmacy"

    @property
    def label(self) -> str:
        """The Chinese name used in SMS (定点医院 / 定点药店)."""
        return "定点医院" if self is DesignationKind.HOSPITAL else "定点药店"


class BenefitEventKind(StrEnum):
    """What happened to a benefit (one row of ``benefit_event`` each)."""

    STARTED = "started"
    HOSPITAL_CHANGED = "hospital_changed"
    PHARMACY_CHANGED = "pharmacy_changed"
    ADMITTED = "admitted"
    DISCHARGED = "discharged"
    RENEWED = "renewed"  # on: the new last valid day (the settlement check passed)
    ENDED = "ended"
    REVOKED = "revoked"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class BenefitRules(_Message):
    """The part of the region's policy a benefit lives by (taken at approval)."""

    region: str
    timezone_offset_hours: int = 8
    changes_per_year: int | None = Field(
        description="Changes of each designation per calendar year; None = unlimited."
    )
    suspended_while_inpatient: bool = False
    reminder_before: timedelta = timedelta(days=30)
    history_event_limit: int = Field(2000, ge=20)
    validity: timedelta | None = Field(
        default=None,
        description="A renewal's period (the policy's benefit_validity); None: no renewal "
        "(long-term, or a benefit started before renewals were checked).",
    )
    renewal_lookback_months: int = Field(12, ge=1)
    renewal_min_settlement_months: int = Field(6, ge=0)

    @classmethod
    def of(cls, policy: PolicyProfile) -> BenefitRules:
        return cls(
            region=policy.region,
            timezone_offset_hours=policy.timezone_offset_hours,
            changes_per_year=policy.designated_hospital_changes_per_year,
            suspended_while_inpatient=policy.suspended_while_inpatient,
            reminder_before=policy.benefit_reminder_before,
            history_event_limit=policy.benefit_history_event_limit,
            validity=policy.benefit_validity,
            renewal_lookback_months=policy.renewal_lookback_months,
            renewal_min_settlement_months=policy.renewal_min_settlement_months,
        )


class BenefitStart(_Message):
    """Argument of ``start_benefit``: what the application workflow knows; the activity reads
    the certificate row for the rest (disease, designated hospital, validity)."""

    application_id: str
    rules: BenefitRules
    applicant_key: str
    search_attributes: bool = True


class DesignationChange(_Message):
    """A change of the designated hospital or pharmacy, as the workflow keeps it."""

    kind: DesignationKind
    from_code: str | None
    to_code: str
    at: datetime
    actor: str


class HospitalStay(_Message):
    """A stay in hospital the office recorded (Jilin: the benefit is suspended meanwhile)."""

    admitted_on: date
    discharged_on: date | None = None
    admitted_by: str
    discharged_by: str | None = None


class BenefitState(_Message):
    """What a continued-as-new run carries over."""

    status: BenefitStatus
    designated_hospital_code: str
    designated_hospital_name: str = ""
    pharmacy_code: str | None = None
    valid_to: date | None
    event_seq: int
    changes: tuple[DesignationChange, ...] = Field(
        default=(), description="Changes of the current calendar year (the limit counts them)."
    )
    stays: tuple[HospitalStay, ...] = ()
    reminded: bool = False


class BenefitInput(_Message):
    """Start argument of the benefit workflow; the certificate row is already in Postgres."""

    application_id: str
    rules: BenefitRules
    applicant_key: str
    disease_code: str
    designated_hospital_code: str
    designated_hospital_name: str = ""
    pharmacy_code: str | None = None
    valid_from: date
    valid_to: date | None = Field(description="None = long-term (Jilin, seed 003).")
    search_attributes: bool = True
    resume: BenefitState | None = None


# ---- updates ------------------------------------------------------------------------------------


class ChangeDesignation(_Message):
    """Update ``change_designation``: a new designated hospital or pharmacy (one door)."""

    kind: DesignationKind = DesignationKind.HOSPITAL
    code: str
    actor: str = Field(description="Who records it: clerk:<name>, applicant, operator:<name>.")


class RecordStay(_Message):
    """Updates ``admit`` and ``discharge``: the day of admission or discharge (local date)."""

    on: date
    actor: str


class Revoke(_Message):
    """Update ``revoke``: the benefit is taken back from a day (an audit finding, seed 002
    rule 12). The caller has recorded the finding and tells the person itself."""

    on: date = Field(description="The first day without the benefit.")
    reason: str
    actor: str


# ---- activities ---------------------------------------------------------------------------------


class BenefitEvent(_Message):
    """Argument of ``record_benefit_event``: the row's new state and the event that made it.

    Applied once per ``seq`` (the event's unique key) and only when newer than the row's
    last event, so a retried or late write never turns a newer state back.
    """

    application_id: str
    seq: int
    kind: BenefitEventKind
    at: datetime
    actor: str
    status: BenefitStatus
    on: date | None = None
    designated_hospital_code: str | None = None
    pharmacy_code: str | None = None
    from_code: str | None = None


class RenewalCheck(_Message):
    """Argument of ``renewal_check``: the months before the end to count settlements in."""

    application_id: str
    ends_on: date = Field(description="The last valid day.")
    lookback_months: int = Field(ge=1)
    min_months: int = Field(ge=0)


class RenewalFound(_Message):
    """What ``renewal_check`` counted: the months with a normal settlement, in the window."""

    months: list[str] = Field(description="YYYY-MM, sorted.")
    first_month: str
    last_month: str

    def passes(self, min_months: int) -> bool:
        return len(self.months) >= min_months


class BenefitRecorded(_Message):
    """What ``record_benefit_event`` found: the designated hospital's name, for the SMS."""

    designated_hospital_name: str
    problem: str | None = Field(
        default=None,
        description="Why the change was not recorded (the register changed since the "
        "validator looked): the update fails with it and nothing changed.",
    )


# ---- what the CLI sees --------------------------------------------------------------------------


class BenefitView(_Message):
    """The benefit as ``chronic benefit show`` prints it; the query's and the run's result."""

    application_id: str
    region: str
    disease_code: str
    status: BenefitStatus
    designated_hospital_code: str
    designated_hospital_name: str = ""
    pharmacy_code: str | None = None
    valid_from: date
    valid_to: date | None
    changes_per_year: int | None
    changes_this_year: dict[DesignationKind, int] = Field(default_factory=dict)
    next_change_from: dict[DesignationKind, date] = Field(
        default_factory=dict,
        description="For a designation whose limit this year is used up: when it may change next.",
    )
    suspended_while_inpatient: bool = False
    in_hospital_since: date | None = None
    stays: tuple[HospitalStay, ...] = ()
    reminder_at: datetime | None = None
    ends_at: datetime | None = None
    waiting_for: str = ""
    ended_at: datetime | None = None


BenefitInput.model_rebuild()
