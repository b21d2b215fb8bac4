"""The monthly expert statistic (seed 002, 五: 每月统计并通报各医院), run by a Temporal Schedule.

On the first of each month (`chronic schedule ensure` creates the schedule) the workflow
counts the month before in the region's local time, stores one report per hospital and sends
each hospital's insurance desk an SMS with its totals; the full lines are in the
``expert_report`` table and `chronic report experts --month`.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.notifications import SmsRequest, SmsTemplate
    from models.oversight import ExpertMonthRecorded, ExpertMonthRequest
    from workers import queues
    from workflows.sms import send_beside
    from workflows.steps import run_step

WORKFLOW_TYPE = "ExpertMonthReport"


def last_month(request: ExpertMonthRequest) -> str:
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
            "record_expert_month",
            request,
            queue=queues.REVIEW,
            result_type=ExpertMonthRecorded,
            summary=f"expert statistic {month}",
        )
        told = [h for h in recorded.hospitals if h.notice_mobile]
        for hospital in told:
            await send_beside(
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
        untold = [h.hospital_code for h in recorded.hospitals if not h.notice_mobile]
        workflow.set_current_details(
            f"{month}: {len(recorded.hospitals)} hospitals reported, {len(told)} told by SMS"
            + (f"; no insurance-desk mobile for {', '.join(untold)}" if untold else "")
        )
        return recorded
