"""Notification activities: SMS to applicants and to hospitals, at most once per dedup key.

Runs on the ``notification`` task queue. The request names its recipient by application,
out-of-area filing or hospital; the number is looked up here, in the business database, so it
never enters Temporal history. Every message is first written to the ``sms_outbox`` table under
its dedup key (unique constraint) and committed; only then is the provider called, with the row
locked, so a retried or duplicated activity finds the row already sent and does not send again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import Insert, insert
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from chronic.db import Database
from chronic.settings import get_settings
from chronic.sms.gateway import SmsGateway, SmsSendError
from chronic.sms.phone import InvalidPhoneNumber, scrub, to_e164
from chronic.sms.sealed import seal
from chronic.sms.templates import missing_params, render_masked, spec
from models.domain import SmsStatus
from models.notifications import SmsRequest, SmsResult, timeline_path
from models.roles.notification import NotificationRole
from models.tables import (
    Application,
    Expert,
    FilingRecord,
    Hospital,
    InsuredPerson,
    SmsOutbox,
)

# Failure types a workflow's retry policy or error handling can match on.
RECIPIENT_MISSING = "SmsRecipientMissing"
REQUEST_INVALID = "SmsRequestInvalid"
SEND_FAILED = "SmsSendError"

NO_RECIPIENT = "-"
"""The outbox recipient of a message that found no usable number (missing or invalid)."""


class NotificationActivities(NotificationRole):
    """The notification role's activities, bound to one database and one SMS gateway.

    Example (the notification worker)::

        acts = NotificationActivities(Database.from_settings(), build_gateway())
        Worker(client, task_queue="notification", activities=acts.activities())
    """

    def __init__(self, db: Database, gateway: SmsGateway, hall_url: str | None = None) -> None:
        """
        Args:
            hall_url: The hall's public address, the start of every SMS link; None: the
                process settings' (``CHRONIC_HALL_PUBLIC_URL``).
        """
        self._db = db
        self._gateway = gateway
        self._hall_url = (hall_url or get_settings().hall_url).rstrip("/")

    def activities(self) -> list[Callable[..., Any]]:
        """The activity callables to register on the worker."""
        return [self.send_sms]

    @activity.defn
    async def send_sms(self, request: SmsRequest) -> SmsResult:
        """Send one templated SMS unless a message with the same dedup key was already sent.

        A send that cannot succeed leaves a failed outbox row with the reason first (also when
        no usable number exists: recipient ``-``), so ``chronic sms list --failed`` shows it
        and ``chronic sms resend`` can send it once the data is fixed.

        Raises:
            ApplicationError: non-retryable (type ``SmsRecipientMissing``) when the application
                or hospital, or its mobile, does not exist or is not a valid number;
                non-retryable ``SmsRequestInvalid`` when template values are missing or the
                dedup key was used for another template; ``SmsSendError`` when the provider
                refused — retryable for throttling and outages, non-retryable for an invalid
                number or configuration.
        """
        values = dict(request.params)
        if request.application_id is not None:
            values["application_id"] = request.application_id
            values["link"] = timeline_path(request.application_id)
        if values.get("link", "").startswith("/"):  # a path in the hall: made absolute here
            values["link"] = self._hall_url + values["link"]
        if request.filing_id is not None:
            values["filing_id"] = request.filing_id
        missing = missing_params(request.template, values)
        if missing:
            raise ApplicationError(
                f"SMS template {request.template.value!r} needs values for "
                f"{', '.join(missing)}; add them to SmsRequest.params",
                type=REQUEST_INVALID,
                non_retryable=True,
            )
        stored = self._stored_params(request, values)
        try:
            phone = await self._recipient(request)
        except ApplicationError as error:
            sent = await self._record_no_recipient(request, stored, error.message)
            if sent is not None:
                return sent
            raise
        await self._record(request, phone, stored)
        return await self._deliver(request, phone, values, stored)

    @staticmethod
    def _stored_params(request: SmsRequest, values: dict[str, str]) -> dict[str, str]:
        """What the outbox row keeps: the values, the rendered text and the hospital addressed.

        ``chronic sms resend`` rebuilds the request from them (without ``application_id``,
        ``hospital_code`` and ``text``, which are added here). A secret value (a sign-in code)
        is kept sealed, and the text shows it masked.
        """
        secret = spec(request.template).secret
        stored = {k: seal(v) if k in secret else v for k, v in values.items()}
        stored["text"] = render_masked(request.template, values)
        if request.hospital_code is not None:
            stored["hospital_code"] = request.hospital_code
        if request.person_id is not None:
            stored["person_id"] = str(request.person_id)
        if request.expert_code is not None:
            stored["to_expert"] = request.expert_code
        return stored

    async def _recipient(self, request: SmsRequest) -> str:
        """The recipient's number (E.164), from the application, the filing or the hospital."""
        template = request.template.value

        def missing(who: str, what: str) -> ApplicationError:
            return ApplicationError(
                f"Cannot send SMS {template!r}: {who} {what}",
                type=RECIPIENT_MISSING,
                non_retryable=True,
            )

        async with self._db.session() as session:
            if request.filing_id is not None:
                who, passed = f"filing {request.filing_id}", "filing ID"
                raw = await session.scalar(
                    select(FilingRecord.mobile).where(FilingRecord.id == request.filing_id)
                )
            elif request.person_id is not None:
                who, passed = f"insured person #{request.person_id}", "person id"
                raw = await session.scalar(
                    select(InsuredPerson.mobile).where(InsuredPerson.id == request.person_id)
                )
            elif request.expert_code is not None:
                who, passed = f"expert {request.expert_code}", "expert code"
                expert = await session.get(Expert, request.expert_code)
                if expert is not None and not expert.mobile:
                    raise missing(
                        who,
                        "has no mobile on record; record it (expert.mobile, or `chronic expert "
                        "enroll --mobile` for a new expert) and resend it (`chronic sms resend`)",
                    )
                raw = expert.mobile if expert is not None else None
            elif request.application_id is not None:
                who, passed = f"application {request.application_id}", "application ID"
                raw = await session.scalar(
                    select(Application.mobile).where(Application.id == request.application_id)
                )
            else:
                who, passed = f"hospital {request.hospital_code}", "hospital code"
                hospital = await session.get(Hospital, request.hospital_code)
                if hospital is not None and not hospital.notice_mobile:
                    raise missing(
                        who,
                        "has no notice mobile; set hospital.notice_mobile for its insurance "
                        "desk and resend it (`chronic sms resend`)",
                    )
                raw = hospital.notice_mobile if hospital is not None else None
            if raw is None:
                raise missing(who, f"does not exist; check the {passed} passed to send_sms")
        try:
            return to_e164(raw)
        except InvalidPhoneNumber as exc:
            raise ApplicationError(
                f"Cannot send SMS {template!r}: the mobile stored for {who} is {exc}; "
                "correct it in the database and resend it (`chronic sms resend`)",
                type=RECIPIENT_MISSING,
                non_retryable=True,
            ) from None

    async def _record_no_recipient(
        self, request: SmsRequest, params: dict[str, str], reason: str
    ) -> SmsResult | None:
        """Record a send that found no usable recipient as a failed outbox row with ``reason``.

        The row (recipient ``-``) shows in ``chronic sms list --failed``; a resend once the
        number is fixed sends it under the same dedup key. Returns the earlier result when the
        message was already sent (a retry after the recipient changed), else None.
        """
        error = scrub(reason)[:1000]
        statement = (
            self._new_row(
                request,
                NO_RECIPIENT,
                params,
                status=SmsStatus.FAILED,
                attempts=1,
                last_error=error,
            )
            .on_conflict_do_update(
                index_elements=["dedup_key"],
                set_={
                    "status": SmsStatus.FAILED.value,
                    "recipient": NO_RECIPIENT,
                    "params": params,
                    "attempts": col(SmsOutbox.attempts) + 1,
                    "last_error": error,
                },
                # Never overwrite a message that went out, nor another message's row.
                where=(col(SmsOutbox.status) != SmsStatus.SENT.value)
                & (col(SmsOutbox.template) == request.template.value),
            )
            .returning(col(SmsOutbox.id), col(SmsOutbox.attempts))
        )
        async with self._db.session() as session:
            recorded = (await session.exec(statement)).first()
            if recorded is None:
                row = (
                    await session.exec(
                        select(SmsOutbox).where(SmsOutbox.dedup_key == request.dedup_key)
                    )
                ).first()
                return _already_sent(row) if row and row.status == SmsStatus.SENT else None
        metrics.sms("failed", request.template.value)
        activity.logger.warning(
            "SMS outbox=%s template=%s application=%s hospital=%s not sent (attempt %d, not "
            "retryable): %s",
            recorded[0],
            request.template.value,
            request.application_id or request.filing_id or request.expert_code or "-",
            request.hospital_code or "-",
            recorded[1],
            error,
        )
        return None

    async def _record(self, request: SmsRequest, phone: str, params: dict[str, str]) -> None:
        """Write the outbox row (pending) unless the key exists, and commit before any send."""
        statement = self._new_row(request, phone, params).on_conflict_do_nothing(
            index_elements=["dedup_key"]
        )
        async with self._db.session() as session:
            await session.exec(statement)

    def _new_row(
        self,
        request: SmsRequest,
        recipient: str,
        params: dict[str, str],
        *,
        status: SmsStatus = SmsStatus.PENDING,
        attempts: int = 0,
        last_error: str | None = None,
    ) -> Insert:
        """The INSERT of a new outbox row for ``request`` (the caller says what a clash does)."""
        return insert(SmsOutbox).values(
            dedup_key=request.dedup_key,
            application_id=request.application_id,
            filing_id=request.filing_id,
            template=request.template.value,
            recipient=recipient,
            params=params,
            status=status.value,
            gateway=self._gateway.name,
            attempts=attempts,
            last_error=last_error,
            created_at=datetime.now(UTC),
        )

    async def _deliver(
        self, request: SmsRequest, phone: str, values: dict[str, str], stored: dict[str, str]
    ) -> SmsResult:
        """Lock the outbox row, send unless already sent, and record the outcome."""
        log = activity.logger
        failure: SmsSendError | None = None
        async with self._db.session() as session:
            # The lock is held during the provider call: a concurrent attempt with the same
            # key waits here and then finds the row sent.
            row = (
                await session.exec(
                    select(SmsOutbox)
                    .where(SmsOutbox.dedup_key == request.dedup_key)
                    .with_for_update()
                )
            ).one()
            where = (
                f"outbox={row.id} template={request.template.value} "
                f"application={request.application_id or request.filing_id or '-'} "
                f"expert={request.expert_code or '-'} "
                f"hospital={request.hospital_code or '-'}"
            )
            if (
                row.template != request.template.value
                or row.application_id != request.application_id
                or row.filing_id != request.filing_id
            ):
                raise ApplicationError(
                    f"SMS dedup key {request.dedup_key!r} was already used for another message "
                    f"(outbox row {row.id}, template {row.template!r}); give each message its "
                    "own key, e.g. '<workflow id>:<step>'",
                    type=REQUEST_INVALID,
                    non_retryable=True,
                )
            if row.status == SmsStatus.SENT:
                log.info("SMS %s already sent; not sending again", where)
                return _already_sent(row)

            row.attempts += 1
            row.recipient = phone  # a corrected mobile is used (and recorded) on a retry
            row.params = stored  # a row first recorded without a recipient gets its text
            row.gateway = self._gateway.name
            try:
                message_id = await self._gateway.send(phone, request.template, values)
            except SmsSendError as exc:
                failure = exc
            except Exception as exc:
                # An unexpected gateway error: record it and let Temporal retry.
                failure = SmsSendError(
                    f"{type(exc).__name__}: {exc}", retryable=True, gateway=self._gateway.name
                )
            if failure is None:
                row.status = SmsStatus.SENT
                row.provider_message_id = message_id
                row.sent_at = datetime.now(UTC)
                row.last_error = None
                metrics.sms("sent", request.template.value)
                log.info("SMS %s sent via %s (attempt %d)", where, self._gateway.name, row.attempts)
            else:
                row.status = SmsStatus.FAILED
                row.last_error = scrub(failure.message)[:1000]
                metrics.sms("failed", request.template.value)
                log.warning(
                    "SMS %s failed via %s (attempt %d, %s): %s",
                    where,
                    self._gateway.name,
                    row.attempts,
                    "will retry" if failure.retryable else "not retryable",
                    failure.message,
                )
            session.add(row)
            assert row.id is not None
            result = SmsResult(
                outbox_id=row.id,
                status=row.status,
                gateway=row.gateway,
                provider_message_id=row.provider_message_id,
            )
        # Committed: the failed attempt is on record before Temporal sees the error.
        if failure is not None:
            raise ApplicationError(
                f"SMS {request.template.value!r} (outbox row {result.outbox_id}) not sent: "
                f"{failure.message}",
                {"code": failure.code, "gateway": failure.gateway or self._gateway.name},
                type=SEND_FAILED,
                non_retryable=not failure.retryable,
            )
        return result


def _already_sent(row: SmsOutbox) -> SmsResult:
    """The result of a send whose dedup key went out before: the provider is not called."""
    assert row.id is not None
    return SmsResult(
        outbox_id=row.id,
        status=SmsStatus.SENT,
        gateway=row.gateway,
        provider_message_id=row.provider_message_id,
        duplicate=True,
    )


__all__ = [
    "NO_RECIPIENT",
    "RECIPIENT_MISSING",
    "REQUEST_INVALID",
    "SEND_FAILED",
    "NotificationActivities",
]
