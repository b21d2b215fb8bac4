"""The out-of-area care filing workflow: one 异地就医备案 from submission to its result (seed 001).

The row (with the person's data and the uploads) is committed before this workflow starts; the
workflow gets the filing ID, the filing type, the register region and an HMAC of the ID number.
It runs the filing's checks (intake role), records the outcome (review role) and tells the
person by SMS beside the process:

- **filed** — valid from the start date; a long-term filing has no end, a temporary one ends on
  its end date (or after ``FilingRules.temporary_validity_days``). The row is closed (decided)
  and the SMS handed off; a temporary filing's workflow then sleeps until the day after its end
  and marks the row ``expired``, so the status column never claims a lapsed filing is valid.
- **refused** — every reason recorded on the row, the first 60 characters by SMS.
- a step that fails for good (a missing row, a refused write), or a cancellation before the
  decision → the row is closed with the reason and the person gets the FILING_CLOSED SMS; a
  failure also fails the run visibly. A run that ends otherwise (terminated) is closed by the
  review worker's reconciler, as for applications.

No I/O here: every read and write is an activity; the SMS is an ``SmsDelivery`` child
(:class:`workflows.sms.Deliveries`), never a gate.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models import text
    from models.domain import FilingStatus
    from models.filing import (
        FilingCheck,
        FilingCheckRequest,
        FilingInput,
        FilingProgress,
        FilingStatusChange,
    )
    from models.notifications import SmsRequest, SmsTemplate, filing_closed_sms, reason_param
    from models.roles.intake import FilingIntakeRole
    from models.roles.review import FilingReviewRole
    from workflows.sms import Deliveries
    from workflows.steps import ProcessStop, cause, run_step

WORKFLOW_TYPE = "OutOfAreaFilingWorkflow"
"""The workflow type name (the UI's ``WorkflowType`` filter)."""

_DECIDED = (FilingStatus.FILED, FilingStatus.REFUSED, FilingStatus.EXPIRED)
_UNSET = object()


@workflow.defn(name=WORKFLOW_TYPE)
class OutOfAreaFilingWorkflow:
    @workflow.init
    def __init__(self, request: FilingInput) -> None:
        self._request = request
        self._zone = timezone(timedelta(hours=request.rules.timezone_offset_hours))
        self._status = FilingStatus.SUBMITTED
        self._seq = 0
        self._check: FilingCheck | None = None
        self._decided_at: datetime | None = None
        self._finished_at: datetime | None = None
        self._waiting_for = "the filing's checks (register, dates, uploads)"
        self._deliveries = Deliveries()
        self._stop = ProcessStop()  # a cancel: the process's wait for the expiry ends on it
        self._published: dict[SearchAttributeKey[Any], Any] = {}

    # ---- the process -----------------------------------------------------------------------

    @workflow.run
    async def run(self, request: FilingInput) -> FilingProgress:
        self._publish()
        process = asyncio.create_task(self._process())
        try:
            await workflow.wait_condition(process.done)
        except asyncio.CancelledError:
            if await self._stop.stop(process):
                await self._close_at_the_end("cancelled by an operator", actor="operator")
            await self._deliveries.done()  # the person is told before the run ends
            raise
        try:
            process.result()
        except (ActivityError, ChildWorkflowError, ApplicationError) as error:
            # A step failed for good: close the filing, tell the person, fail visibly.
            workflow.logger.error("filing process failed: %s", cause(error))
            await self._close_at_the_end("processing failed; the office has been alerted")
            await self._deliveries.done()  # told before the run fails
            raise ApplicationError(
                f"filing process failed: {cause(error)}", non_retryable=True
            ) from error
        return await self._finish()

    async def _process(self) -> None:
        request = self._request
        check = await run_step(
            FilingIntakeRole.check_filing,
            FilingCheckRequest(
                filing_id=request.filing_id,
                rules=request.rules,
                submitted_on=request.submitted_at.astimezone(self._zone).date(),
            ),
            queue=FilingIntakeRole.QUEUE,
            summary="filing checks: register, dates, uploads",
        )
        self._check = check
        if not check.filed:
            await self._set_status(
                FilingStatus.REFUSED, step="refused", reasons=check.reasons, closed=True
            )
            await self._sms(
                SmsTemplate.FILING_REFUSED, "refused", reason=reason_param("; ".join(check.reasons))
            )
            return
        assert check.valid_from is not None
        await self._set_status(
            FilingStatus.FILED,
            step="filed",
            valid_from=check.valid_from,
            valid_to=check.valid_to,
            closed=True,
        )
        await self._sms(
            SmsTemplate.FILING_FILED,
            "filed",
            destination=check.destination,
            validity=_validity_text(check.valid_from, check.valid_to),
        )
        if check.valid_to is not None:
            await self._expire_after(check.valid_to)

    async def _expire_after(self, valid_to: date) -> None:
        """Sleep until the day after ``valid_to`` (local time), then mark the filing expired."""
        end = datetime.combine(valid_to + timedelta(days=1), time(0), tzinfo=self._zone)
        self._waiting_for = f"valid until {valid_to.isoformat()}; then marked expired"
        self._publish()
        try:
            await workflow.wait_condition(
                lambda: self._stop.requested,
                timeout=max(end - workflow.now(), timedelta(0)),
                timeout_summary=f"filing valid until {valid_to.isoformat()}",
            )
        except TimeoutError:
            await self._set_status(FilingStatus.EXPIRED, step="expired")
            return
        self._stop.check()

    async def _finish(self) -> FilingProgress:
        self._finished_at = workflow.now()
        self._publish()
        # The person has been told when the deliveries are done (or failed for good, which the
        # failed outbox row shows).
        await self._deliveries.done()
        return self.progress()

    async def _close_at_the_end(self, reason: str, *, actor: str = "system") -> None:
        """Close an undecided filing with ``reason`` and tell the person (once, key
        ``FIL:closed``); a decided one keeps its outcome."""
        if self._decided_at is not None:
            return
        try:
            await self._set_status(
                FilingStatus.CLOSED, step="closed", reasons=(reason,), closed=True, actor=actor
            )
        except ActivityError as error:  # the row cannot be written: say so, still tell
            workflow.logger.error("could not close the filing: %s", cause(error))
        await self._send(filing_closed_sms(self._request.filing_id, reason))
        self._finished_at = workflow.now()

    # ---- steps that write ---------------------------------------------------------------------

    async def _set_status(
        self,
        status: FilingStatus,
        *,
        step: str,
        reasons: tuple[str, ...] = (),
        valid_from: date | None = None,
        valid_to: date | None = None,
        closed: bool = False,
        actor: str = "system",
    ) -> None:
        self._seq += 1
        await run_step(
            FilingReviewRole.record_filing_status,
            FilingStatusChange(
                filing_id=self._request.filing_id,
                status=status,
                at=workflow.now(),
                step=step,
                seq=self._seq,
                actor=actor,
                reasons=reasons,
                valid_from=valid_from,
                valid_to=valid_to,
                closed=closed,
            ),
            queue=FilingReviewRole.QUEUE,
            summary=f"filing status {status}",
        )
        self._status = status
        if status in _DECIDED and self._decided_at is None:
            self._decided_at = workflow.now()
            self._waiting_for = "the SMS to the person"
        self._publish()

    async def _sms(self, template: SmsTemplate, step: str, **params: str) -> None:
        for name, value in params.items():
            if text.problem(value, field=name) is not None:
                # Typed text passed the same rule at the door; reaching this is a bug. Send
                # the message without that detail rather than not at all.
                workflow.logger.error("SMS %s: param %s refused; sent without it", template, name)
                params[name] = "详见备案查询"
        await self._send(
            SmsRequest(
                dedup_key=f"{self._request.filing_id}:{step}",
                template=template,
                filing_id=self._request.filing_id,
                params=params,
            )
        )

    async def _send(self, request: SmsRequest) -> None:
        await self._deliveries.send(request)

    # ---- what operators and the CLI see ----------------------------------------------------

    def _publish(self) -> None:
        """Search attributes (only those that changed) and the UI's current details."""
        values: dict[SearchAttributeKey[Any], Any] = {
            sa.APPLICATION_STATUS: self._status.value,
            sa.REGION: self._request.region,
            sa.APPLICANT_KEY: self._request.applicant_key,
        }
        changed = {k: v for k, v in values.items() if self._published.get(k, _UNSET) != v}
        self._published.update(changed)
        if changed and self._request.search_attributes:
            workflow.upsert_search_attributes([k.value_set(v) for k, v in changed.items()])
        check = self._check
        lines = [
            f"Out-of-area filing **{self._status}** · {self._request.filing_type}",
            "",
            f"Next: {'finished' if self._finished_at else self._waiting_for}",
        ]
        if check is not None and check.valid_from is not None:
            lines.append(f"Valid {_validity_text(check.valid_from, check.valid_to)}")
        if check is not None:
            lines += [f"- {reason}" for reason in check.reasons]
        workflow.set_current_details("\n".join(lines))

    @workflow.query
    def progress(self) -> FilingProgress:
        """Where the filing stands (no personal data)."""
        check = self._check
        return FilingProgress(
            filing_id=self._request.filing_id,
            region=self._request.region,
            filing_type=self._request.filing_type,
            status=self._status,
            submitted_at=self._request.submitted_at,
            waiting_for="finished" if self._finished_at else self._waiting_for,
            reasons=check.reasons if check is not None else (),
            valid_from=check.valid_from if check is not None else None,
            valid_to=check.valid_to if check is not None else None,
            destination=check.destination if check is not None else "",
            decided_at=self._decided_at,
            finished_at=self._finished_at,
        )


def _validity_text(valid_from: date, valid_to: date | None) -> str:
    """``2026-12-01起长期有效`` or ``2026-11-25至2027-05-23`` (the SMS's wording)."""
    if valid_to is None:
        return f"{valid_from.isoformat()}起长期有效"
    return f"{valid_from.isoformat()}至{valid_to.isoformat()}"


__all__ = ["WORKFLOW_TYPE", "OutOfAreaFilingWorkflow"]
