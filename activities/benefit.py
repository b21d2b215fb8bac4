"""The benefit's records on the ``review`` queue: its workflow started, its changes written."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities import audit
from activities.errors import missing_record
from chronic.db import Database
from models.benefit import (
    BenefitEvent,
    BenefitEventKind,
    BenefitInput,
    BenefitRecorded,
    BenefitStart,
    RenewalCheck,
    RenewalFound,
    workflow_id,
)
from models.roles.review import BenefitRole
from models.tables import (
    Application,
    Benefit,
    BenefitEventRow,
    Hospital,
    Pharmacy,
    Settlement,
)
from workers import queues
from workflows.benefit import BenefitWorkflow

log = logging.getLogger("chronic.benefit")


class BenefitActivities(BenefitRole):
    """Start a benefit's workflow and write what happens to the benefit (idempotent per step)."""

    def __init__(self, db: Database, client: Client) -> None:
        self.db = db
        self.client = client

    @activity.defn
    async def start_benefit(self, start: BenefitStart) -> str:
        """Start ``benefit-<application id>`` from the certificate row; returns its workflow ID
        (:func:`start_benefit_workflow`).

        Raises:
            ApplicationError: non-retryable, when there is no certificate for the application.
        """
        return await start_benefit_workflow(self.db, self.client, start)

    @activity.defn
    async def record_benefit_event(self, event: BenefitEvent) -> BenefitRecorded:
        """Write one benefit event: the row's new state (when newer), the event, the audit.

        A designated hospital not in the application region's register is not recorded: the
        result says why (the validator read an older register) and nothing changes.

        Raises:
            ApplicationError: non-retryable, when there is no certificate for the application.
        """
        async with self.db.session() as session:
            benefit = await _benefit(session, event.application_id, lock=True)
            application = await session.get(Application, event.application_id)
            assert application is not None  # the benefit's foreign key
            if event.designated_hospital_code is not None:
                hospital = await session.get(Hospital, event.designated_hospital_code)
                if hospital is None or hospital.region != application.region:
                    return BenefitRecorded(
                        designated_hospital_name="",
                        problem=f"no hospital with code {event.designated_hospital_code} in "
                        f"the {application.region} register",
                    )
            if event.pharmacy_code is not None:
                problem = await pharmacy_problem(session, application.region, event.pharmacy_code)
                if problem is not None:
                    return BenefitRecorded(designated_hospital_name="", problem=problem)
            inserted = await session.exec(
                insert(BenefitEventRow)
                .values(
                    application_id=event.application_id,
                    seq=event.seq,
                    kind=event.kind.value,
                    status=event.status.value,
                    on_date=event.on,
                    from_code=event.from_code,
                    to_code=event.designated_hospital_code or event.pharmacy_code,
                    actor=event.actor,
                    at=event.at,
                )
                .on_conflict_do_nothing(index_elements=["application_id", "seq"])
            )
            if inserted.rowcount and benefit.event_seq < event.seq:
                benefit.event_seq = event.seq
                benefit.status = event.status.value
                if event.designated_hospital_code is not None:
                    benefit.designated_hospital_code = event.designated_hospital_code
                if event.pharmacy_code is not None:
                    benefit.pharmacy_code = event.pharmacy_code
                if event.kind == BenefitEventKind.ADMITTED:
                    benefit.in_hospital_since = event.on
                elif event.kind == BenefitEventKind.DISCHARGED:
                    benefit.in_hospital_since = None
                elif event.kind in (BenefitEventKind.REVOKED, BenefitEventKind.RENEWED):
                    benefit.valid_to = event.on
                session.add(benefit)
            detail: dict[str, Any] = {"status": event.status.value, "seq": event.seq}
            if event.on is not None:
                detail["on"] = event.on.isoformat()
            if event.from_code is not None:
                detail["from"] = event.from_code
            if event.designated_hospital_code or event.pharmacy_code:
                detail["to"] = event.designated_hospital_code or event.pharmacy_code
            await audit.record(
                session,
                step_key=f"{event.application_id}:benefit:{event.seq}",
                application_id=event.application_id,
                actor=event.actor,
                action=f"benefit_{event.kind.value}",
                at=event.at,
                **detail,
            )
            await session.flush()
            hospital = await session.get(Hospital, benefit.designated_hospital_code)
            return BenefitRecorded(designated_hospital_name=hospital.name if hospital else "")

    @activity.defn
    async def renewal_check(self, check: RenewalCheck) -> RenewalFound:
        """Seed 002 rule 9: the months with a normal settlement of the benefit's disease among
        the ``lookback_months`` calendar months ending with the month of the last valid day.

        The decision (at least ``min_months`` of them) is the workflow's; the count and the
        window go into the audit trail either way.
        """
        last = check.ends_on.replace(day=1)
        first = _months_before(last, check.lookback_months - 1)
        async with self.db.session() as session:
            benefit = await _benefit(session, check.application_id)
            months = sorted(
                f"{m:%Y-%m}"
                for m in await session.scalars(
                    sa.select(col(Settlement.month)).where(
                        col(Settlement.person_id) == benefit.person_id,
                        col(Settlement.disease_code) == benefit.disease_code,
                        col(Settlement.normal).is_(True),
                        col(Settlement.month) >= first,
                        col(Settlement.month) <= last,
                    )
                )
            )
            found = RenewalFound(
                months=months, first_month=f"{first:%Y-%m}", last_month=f"{last:%Y-%m}"
            )
            await audit.record(
                session,
                step_key=f"{check.application_id}:renewal:{check.ends_on}",
                application_id=check.application_id,
                actor="system",
                action="benefit_renewal_checked",
                at=datetime.now(UTC),
                window=f"{found.first_month}..{found.last_month}",
                normal_months=len(months),
                required=check.min_months,
                renewed=found.passes(check.min_months),
            )
        return found


async def start_benefit_workflow(db: Database, client: Client, start: BenefitStart) -> str:
    """Start ``benefit-<application id>`` from the certificate row; returns its workflow ID.

    The one way a benefit's workflow is started: by the application workflow's
    ``start_benefit`` step on approval, and by the reconciler for a benefit approved before
    that step existed (or whose start failed for good). At most one run chain per benefit,
    ever: a second start finds the running one (``USE_EXISTING``), and a benefit whose
    workflow has ended is not started again (``REJECT_DUPLICATE``: logged, not raised).

    Raises:
        ApplicationError: non-retryable, when there is no certificate for the application.
    """
    async with db.session() as session:
        benefit = await _benefit(session, start.application_id)
        application = await session.get(Application, start.application_id)
        hospital = await session.get(Hospital, benefit.designated_hospital_code)
        if benefit.pharmacy_code is None and application is not None:
            benefit.pharmacy_code = application.designated_pharmacy_code  # chosen on the form
            session.add(benefit)
        request = BenefitInput(
            application_id=start.application_id,
            rules=start.rules,
            applicant_key=start.applicant_key,
            disease_code=benefit.disease_code,
            designated_hospital_code=benefit.designated_hospital_code,
            designated_hospital_name=hospital.name if hospital is not None else "",
            pharmacy_code=benefit.pharmacy_code,
            valid_from=benefit.valid_from,
            valid_to=benefit.valid_to,
            search_attributes=start.search_attributes,
        )
    target = workflow_id(start.application_id)
    validity = f"{request.valid_from} → {request.valid_to or 'long-term'}"
    try:
        await client.start_workflow(
            BenefitWorkflow.run,
            request,
            id=target,
            task_queue=queues.APPLICATIONS,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"benefit of {start.application_id} · {start.rules.region} · "
            f"{request.disease_code} · {validity}",
        )
    except WorkflowAlreadyStartedError:
        log.info("benefit workflow %s has run already", target)
    return target


def _months_before(month: date, count: int) -> date:
    """The first day of the month ``count`` months before ``month`` (a first day)."""
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


async def pharmacy_problem(session: AsyncSession, region: str, code: str) -> str | None:
    """Why ``code`` cannot be the designated pharmacy (None: it can): it must be a pharmacy of
    ``region`` in the pharmacy register."""
    pharmacy = await session.get(Pharmacy, code)
    if pharmacy is None or pharmacy.region != region:
        return (
            f"no pharmacy with code {code} in the {region} pharmacy register: check the code on "
            "the office's list of designated pharmacies"
        )
    return None


async def _benefit(session: AsyncSession, application_id: str, *, lock: bool = False) -> Benefit:
    query = sa.select(Benefit).where(col(Benefit.application_id) == application_id)
    if lock:
        query = query.with_for_update()
    benefit = await session.scalar(query)
    if benefit is None:
        raise missing_record("benefit", application_id)
    return benefit
