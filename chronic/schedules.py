"""The office's recurring work as Temporal Schedules (visible under Schedules in the UI).

- ``expert-month-report:<region>``: on the 1st of each month at 08:00 in the region's time,
  ``ExpertMonthReport`` counts the month before and tells each hospital (seed 002, 五).
- ``audit-sample:<region>``: on the 2nd at 08:00, ``AuditSampleWorkflow`` draws the audit
  sample of the month before's approvals (seed 002, 四).

``ensure`` creates each schedule, or updates it to this version's spec when it exists, so
running it on every deployment (`chronic schedule ensure`, and `dev up`) is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from models.oversight import AuditSampleRequest, ExpertMonthRequest
from models.policy import PolicyProfile
from workers import queues
from workflows.oversight import AuditSampleWorkflow, ExpertMonthReport

CATCHUP = timedelta(days=7)


@dataclass(frozen=True)
class Ensured:
    schedule_id: str
    created: bool  # False: it existed and was updated to this spec


def _zone(policy: PolicyProfile) -> str:
    offset = policy.timezone_offset_hours
    # Etc/GMT-8 is UTC+8 (the sign is inverted in the tz database's Etc zones).
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _monthly(day: int, comment: str, policy: PolicyProfile) -> ScheduleSpec:
    """08:00 on ``day`` of each month, in the region's time."""
    return ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                day_of_month=[ScheduleRange(day)],
                hour=[ScheduleRange(8)],
                minute=[ScheduleRange(0)],
                second=[ScheduleRange(0)],
                comment=comment,
            )
        ],
        time_zone_name=_zone(policy),
    )


# Skip a run while the last one still runs; a run missed while the cluster was down is still
# made within a week.
_POLICY = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP)


def expert_month_schedule(policy: PolicyProfile) -> tuple[str, Schedule]:
    """The monthly expert statistic of ``policy``'s region."""
    schedule_id = f"expert-month-report:{policy.region}"
    return schedule_id, Schedule(
        action=ScheduleActionStartWorkflow(
            ExpertMonthReport.run,
            ExpertMonthRequest(
                region=policy.region, timezone_offset_hours=policy.timezone_offset_hours
            ),
            id=schedule_id,  # the server appends the scheduled time
            task_queue=queues.APPLICATIONS,
            static_summary=f"monthly expert statistic, {policy.region}",
        ),
        spec=_monthly(1, "08:00 on the 1st: the month before, to every hospital", policy),
        policy=_POLICY,
    )


def audit_sample_schedule(policy: PolicyProfile) -> tuple[str, Schedule]:
    """The monthly audit sample of ``policy``'s region, at the policy's share."""
    schedule_id = f"audit-sample:{policy.region}"
    return schedule_id, Schedule(
        action=ScheduleActionStartWorkflow(
            AuditSampleWorkflow.run,
            AuditSampleRequest(
                region=policy.region,
                rate=policy.audit_sample_rate,
                timezone_offset_hours=policy.timezone_offset_hours,
            ),
            id=schedule_id,
            task_queue=queues.APPLICATIONS,
            static_summary=f"monthly audit sample, {policy.region}",
        ),
        spec=_monthly(2, "08:00 on the 2nd: the month before's approvals", policy),
        policy=_POLICY,
    )


async def ensure(client: Client, policy: PolicyProfile) -> list[Ensured]:
    """Create or update every schedule of ``policy``'s region."""
    done = []
    for schedule_id, schedule in (expert_month_schedule(policy), audit_sample_schedule(policy)):
        try:
            await client.create_schedule(schedule_id, schedule)
            done.append(Ensured(schedule_id, created=True))
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(replace)
            done.append(Ensured(schedule_id, created=False))
    return done
