"""SMS notifications as they travel through Temporal: which message, to whom, with what values.

Pure pydantic and workflow-safe (no database or HTTP imports). A request names its recipient
only by reference — the application (whose contact mobile the applicant gave on the form), the
out-of-area filing (likewise) or the hospital (whose insurance desk receives expert notices).
The notification activity looks the number up in the business database, so no phone number or
name ever enters workflow history.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models import text
from models.domain import SmsStatus


class SmsAudience(StrEnum):
    """Who a template is written for."""

    APPLICANT = "applicant"  # the contact mobile of an application
    HOSPITAL = "hospital"  # the insurance desk of a hospital (hospital.notice_mobile)
    FILING = "filing"  # the mobile given on an out-of-area filing (filing.mobile)
    PERSON = "person"  # the mobile on the insurance register (insured_person.mobile)
    EXPERT = "expert"  # an expert of the pool (expert.mobile)


class SmsTemplate(StrEnum):
    """The messages the office sends. Their Chinese text lives in :mod:`chronic.sms.templates`.

    The params each template needs (all non-personal) are listed next to it; for applicant
    templates the activity adds ``application_id`` and ``link`` (the timeline in the hall)
    itself, for filing templates ``filing_id``. A ``link`` param given as a hall path
    (:func:`task_path`) is made absolute with the hall's public address by the activity.
    """

    SUBMITTED = "submitted"  # no params: the application was received
    RETURNED = "returned"  # reasons: why intake sent it back
    MATERIALS_REQUESTED = "materials_requested"  # note: what the expert asks for
    APPROVED = "approved"  # valid_from, valid_to, hospital (designated hospital name)
    REJECTED = "rejected"  # reason
    CLOSED = "closed"  # reason: the application ended without a decision (office, system)
    BENEFIT_REVOKED = "benefit_revoked"  # date, reason: an audit found the records forged
    EXAMINATION_SCHEDULED = "examination_scheduled"  # at, place: on-site examination (鉴定)
    EXPERT_DISQUALIFIED = "expert_disqualified"  # to the hospital: expert_code, strikes
    # To the hospital: month, experts, offers, accepted, declined, lapsed (monthly statistic).
    EXPERT_MONTH_REPORT = "expert_month_report"
    FILING_FILED = "filing_filed"  # destination, validity (out-of-area filing done)
    FILING_REFUSED = "filing_refused"  # reason
    FILING_CLOSED = "filing_closed"  # reason: the filing ended without a decision
    BENEFIT_DESIGNATION_CHANGED = "benefit_designation_changed"  # what, name, on
    BENEFIT_SUSPENDED = "benefit_suspended"  # on: admitted to hospital (Jilin)
    BENEFIT_RESUMED = "benefit_resumed"  # on: discharged
    BENEFIT_ENDING = "benefit_ending"  # valid_to: the reminder before the end
    BENEFIT_ENDED = "benefit_ended"  # valid_to: the validity ran out
    BENEFIT_RENEWED = "benefit_renewed"  # valid_to: renewed after the settlement check
    # To the drawn expert: deadline, link (the task in the hall; never the applicant's data).
    EXPERT_OFFER = "expert_offer"
    EXPERT_OFFER_REMINDER = "expert_offer_reminder"  # deadline, link: once, before it closes
    # To the register's mobile: code, minutes (the hall's one-time sign-in code; the code is
    # a secret param: never logged, sealed in the outbox).
    SIGN_IN_CODE = "sign_in_code"

    @property
    def audience(self) -> SmsAudience:
        """Whether the message goes to an applicant, a filer or a hospital's insurance desk."""
        if self in (SmsTemplate.EXPERT_DISQUALIFIED, SmsTemplate.EXPERT_MONTH_REPORT):
            return SmsAudience.HOSPITAL
        if self in (
            SmsTemplate.FILING_FILED,
            SmsTemplate.FILING_REFUSED,
            SmsTemplate.FILING_CLOSED,
        ):
            return SmsAudience.FILING
        if self is SmsTemplate.SIGN_IN_CODE:
            return SmsAudience.PERSON
        if self in (SmsTemplate.EXPERT_OFFER, SmsTemplate.EXPERT_OFFER_REMINDER):
            return SmsAudience.EXPERT
        return SmsAudience.APPLICANT


def timeline_path(application_id: str) -> str:
    """The hall's short path to an applicant's timeline (``/a/<application id>``).

    An application ID is the submission date and six random characters: nothing personal.
    The page behind it asks the person to sign in and shows only their own application.
    """
    return f"/a/{application_id}"


def task_path(application_id: str) -> str:
    """The hall's short path to an expert's review task (``/t/<application id>``); the page
    behind it opens only for the expert the task is offered to or held by."""
    return f"/t/{application_id}"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class SmsRequest(_Message):
    """Argument of the ``send_sms`` activity.

    Exactly one of ``application_id`` (applicant templates), ``filing_id`` (filing templates),
    ``hospital_code`` (hospital templates), ``person_id`` (the register's mobile: sign-in
    codes) and ``expert_code`` (expert templates) says who receives the message.
    """

    dedup_key: str = Field(
        min_length=1,
        max_length=200,
        description="Same key, same message: sent at most once. Build it from the workflow ID "
        "and the step, e.g. 'APP-2024-0001:approved'. Never put personal data in it.",
    )
    template: SmsTemplate
    application_id: str | None = Field(default=None, max_length=32)
    hospital_code: str | None = Field(default=None, max_length=16)
    filing_id: str | None = Field(default=None, max_length=32)
    person_id: int | None = Field(
        default=None, description="The insured person's row id (never the ID number)."
    )
    expert_code: str | None = Field(
        default=None, max_length=16, description="An expert of the pool (expert templates)."
    )
    params: dict[str, str] = Field(
        default_factory=dict,
        description="Template values. Non-personal only: no names, ID numbers or mobiles.",
    )

    @model_validator(mode="after")
    def _one_recipient_matching_the_template(self) -> SmsRequest:
        recipients = {
            SmsAudience.APPLICANT: self.application_id,
            SmsAudience.HOSPITAL: self.hospital_code,
            SmsAudience.FILING: self.filing_id,
            SmsAudience.PERSON: self.person_id,
            SmsAudience.EXPERT: self.expert_code,
        }
        named = [audience for audience, value in recipients.items() if value is not None]
        if len(named) != 1:
            raise ValueError(
                "an SmsRequest names exactly one recipient: set application_id for a message "
                "to the applicant, filing_id for one about an out-of-area filing, "
                "hospital_code for one to a hospital, person_id for one to the register's "
                "mobile or expert_code for one to an expert"
            )
        audience = self.template.audience
        if named[0] is not audience:
            field, who = _RECIPIENT_FIELDS[audience]
            raise ValueError(
                f"template {self.template.value!r} goes to {who}: set {field} instead of "
                f"{_RECIPIENT_FIELDS[named[0]][0]}"
            )
        for name, value in self.params.items():
            # The rule of every typed text (models.text): ID and mobile numbers never travel.
            if text.problem(value, field=f"SmsRequest.params[{name!r}]") is not None:
                raise ValueError(
                    f"SmsRequest.params[{name!r}] contains an ID number, a mobile number or a "
                    "control character; params travel through Temporal history and must not "
                    "carry personal data (the activity looks the recipient up itself)"
                )
        return self


_RECIPIENT_FIELDS = {
    SmsAudience.APPLICANT: ("application_id", "the applicant"),
    SmsAudience.HOSPITAL: ("hospital_code", "a hospital's insurance desk"),
    SmsAudience.FILING: ("filing_id", "the person who filed an out-of-area filing"),
    SmsAudience.PERSON: ("person_id", "the mobile on the insurance register"),
    SmsAudience.EXPERT: ("expert_code", "an expert of the pool"),
}

REASON_MAX = 60
"""An SMS carries at most this much of a reason, on one line; the full text is in the records."""


def reason_param(reason: str) -> str:
    """A reason as an SMS parameter (see :data:`REASON_MAX`)."""
    return text.clip(reason, REASON_MAX)


def filing_closed_sms(filing_id: str, reason: str) -> SmsRequest:
    """The FILING_CLOSED SMS: one per filing (key ``FIL:closed``), whoever closes it."""
    return SmsRequest(
        dedup_key=f"{filing_id}:closed",
        template=SmsTemplate.FILING_CLOSED,
        filing_id=filing_id,
        params={"reason": reason_param(reason)},
    )


def closed_sms(application_id: str, reason: str) -> SmsRequest:
    """The CLOSED SMS to the applicant: one per application (key ``APP:closed``), whoever
    closes it (the workflow itself, an operator, the reconciler)."""
    return SmsRequest(
        dedup_key=f"{application_id}:closed",
        template=SmsTemplate.CLOSED,
        application_id=application_id,
        params={"reason": reason_param(reason)},
    )


class SmsResult(_Message):
    """What became of one ``send_sms`` call (no phone number: the outbox row holds it)."""

    outbox_id: int
    status: SmsStatus
    gateway: str
    provider_message_id: str | None = None
    duplicate: bool = Field(
        default=False,
        description="True when a message with this dedup key had already been sent; the "
        "provider was not called again.",
    )


__all__ = [
    "REASON_MAX",
    "SmsAudience",
    "SmsRequest",
    "SmsResult",
    "SmsTemplate",
    "closed_sms",
    "filing_closed_sms",
    "reason_param",
    "task_path",
    "timeline_path",
]
