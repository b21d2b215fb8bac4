"""SMS notifications as they travel through Temporal: which message, to whom, with what values.

Pure pydantic and workflow-safe (no database or HTTP imports). A request names its recipient
only by reference — the application (whose contact mobile the applicant gave on the form) or
the hospital (whose insurance desk receives expert notices). The notification activity looks the
number up in the business database, so no phone number or name ever enters workflow history.
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


class SmsTemplate(StrEnum):
    """The messages the office sends. Their Chinese text lives in :mod:`chronic.sms.templates`.

    The params each template needs (all non-personal) are listed next to it; for applicant
    templates the activity adds ``application_id`` itself.
    """

    SUBMITTED = "submitted"  # no params: the application was received
    RETURNED = "returned"  # reasons: why intake sent it back
    MATERIALS_REQUESTED = "materials_requested"  # note: what the expert asks for
    APPROVED = "approved"  # valid_from, valid_to, hospital (designated hospital name)
    REJECTED = "rejected"  # reason
    CLOSED = "closed"  # reason: the application ended without a decision (office, system)
    EXAMINATION_SCHEDULED = "examination_scheduled"  # at, place: on-site examination (鉴定)
    EXPERT_DISQUALIFIED = "expert_disqualified"  # to the hospital: expert_code, strikes

    @property
    def audience(self) -> SmsAudience:
        """Whether the message goes to an applicant or to a hospital's insurance desk."""
        if self is SmsTemplate.EXPERT_DISQUALIFIED:
            return SmsAudience.HOSPITAL
        return SmsAudience.APPLICANT


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class SmsRequest(_Message):
    """Argument of the ``send_sms`` activity.

    Exactly one of ``application_id`` (applicant templates) and ``hospital_code`` (hospital
    templates) says who receives the message.
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
    params: dict[str, str] = Field(
        default_factory=dict,
        description="Template values. Non-personal only: no names, ID numbers or mobiles.",
    )

    @model_validator(mode="after")
    def _one_recipient_matching_the_template(self) -> SmsRequest:
        if (self.application_id is None) == (self.hospital_code is None):
            raise ValueError(
                "an SmsRequest names exactly one recipient: set application_id for a message "
                "to the applicant or hospital_code for one to a hospital, not both or neither"
            )
        audience = self.template.audience
        if audience is SmsAudience.APPLICANT and self.application_id is None:
            raise ValueError(
                f"template {self.template.value!r} goes to the applicant: set application_id "
                "instead of hospital_code"
            )
        if audience is SmsAudience.HOSPITAL and self.hospital_code is None:
            raise ValueError(
                f"template {self.template.value!r} goes to a hospital's insurance desk: set "
                "hospital_code instead of application_id"
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


REASON_MAX = 60
"""An SMS carries at most this much of a reason, on one line; the full text is in the records."""


def reason_param(reason: str) -> str:
    """A reason as an SMS parameter (see :data:`REASON_MAX`)."""
    return text.clip(reason, REASON_MAX)


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
    "reason_param",
]
