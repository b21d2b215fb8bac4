"""The office's monthly oversight, each run by a Temporal Schedule (chronic/schedules.py).

- ``ExpertMonthReport`` (seed 002, 五: 每月统计并通报各医院): on the 1st, count the month before
  in the region's local time, store one report per hospital and send each hospital's
  insurance desk an SMS with its totals; the full lines are in the ``expert_report`` table and
  `chronic report experts --month`.
- ``AuditSampleWorkflow`` (seed 002, 四: 抽审): on the 2nd, draw at least the policy's share of
  the month before's approvals, reproducibly, and open an audit task for each
  (`chronic audit list`, `chronic audit decide`).
"""

from __future__ import annotations

from datetime import timedelta, timezone

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.notifications import SmsRequest, SmsTemplate
    from models.oversight import (
        AuditSampleDrawn,
        AuditSampleRequest,
        ExpertMonthRecorded,
        ExpertMonthRequest,
    )
    from models.roles.review import OversightRole
    from workflows.sms import Deliveries
    from workflows.steps import run_step

WORKFLOW_TYPE = "ExpertMonthReport"


def last_month(request: ExpertMonthRequest | AuditSampleRequest) -> str:
    """The month before now in the region's local time (YYYY-MM)."""
    zone = timezone(timedelta(hours=request.timezone_offset_hours))
    today = workflow.now().astimezone(zone).date()
    return f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"


@workflow.defn(name=WORKFLOW_TYPE)
class ExpertMonthReport:
    """Count one month of expert work, keep each hospital's report, tell each hospital."""

    @workflow.run
    async def run(self, request: ExpertMonthRequest) -> ExpertMonthRecorded:
        month = request.month or last_month(request)
        request = request.model_copy(update={"month": month})
        workflow.set_current_details(f"counting {request.region} {month}")
        recorded: ExpertMonthRecorded = await run_step(
            OversightRole.record_expert_month,
            request,
            queue=OversightRole.QUEUE,
            summary=f"expert statistic {month}",
        )
        told = [h for h in recorded.hospitals if h.notice_mobile]
        deliveries = Deliveries()
        for hospital in told:
            await deliveries.send(
                SmsRequest(
                    dedup_key=f"expert-month:{request.region}:{month}:{hospital.hospital_code}",
                    template=SmsTemplate.EXPERT_MONTH_REPORT,
                    hospital_code=hospital.hospital_code,
                    params={
                        "month": month,
                        "experts": str(hospital.experts),
                        "offers": str(hospital.offers),
                        "accepted": str(hospital.accepted),
                        "declined": str(hospital.declined),
                        "lapsed": str(hospital.lapsed),
                    },
                )
            )
        await deliveries.done()
        untold = [h.hospital_code for h in recorded.hospitals if not h.notice_mobile]
        workflow.set_current_details(
            f"{month}: {len(recorded.hospitals)} hospitals reported, {len(told)} told by SMS"
            + (f"; no insurance-desk mobile for {', '.join(untold)}" if untold else "")
        )
        return recorded


AUDIT_WORKFLOW_TYPE = "AuditSampleWorkflow"


@workflow.defn(name=AUDIT_WORKFLOW_TYPE)
class AuditSampleWorkflow:
    """Draw one period's audit sample and open its tasks."""

    @workflow.run
    async def run(self, request: AuditSampleRequest) -> AuditSampleDrawn:
        period = request.period or last_month(request)
        request = request.model_copy(update={"period": period})
        workflow.set_current_details(f"drawing the {request.region} audit sample of {period}")
        drawn: AuditSampleDrawn = await run_step(
            OversightRole.draw_audit_sample,
            request,
            queue=OversightRole.QUEUE,
            summary=f"audit sample {period}",
        )
        again = "" if drawn.created else " (drawn before; unchanged)"
        workflow.set_current_details(
            f"{period}: {len(drawn.sampled)} of {drawn.approvals} approvals sampled, seed "
            f"{drawn.seed[:16]}{again}"
        )
        return drawn
