"""The reconciler: application rows and their workflows always agree in the end.

Runs inside the review worker, once at start and then every
``CHRONIC_RECONCILE_INTERVAL_SECONDS`` (60). One pass reads the open application rows
(``closed_at IS NULL``) and, in one paged visibility query, the running application
workflows; only the open rows whose workflow is not listed as running are described (a
handful, not every open case every minute):

- **no workflow** and the row is older than ``CHRONIC_RECONCILE_MIN_AGE_SECONDS`` (60, so a
  submission in flight is never raced): the workflow is started with the input submission
  builds (:func:`chronic.submission.application_input`, the region's policy from settings);
- **the workflow ended without closing the row** (terminated, failed, timed out, cancelled):
  the row is closed with what happened (:func:`chronic.closing.close_application`), with an
  audit event by ``system:reconciler`` and the CLOSED SMS to the applicant;
- a running workflow is left alone.

Benefits get a start pass: an active (or suspended) benefit row whose benefit workflow
(``benefit-<application id>``) does not exist — approved before approvals started it, or its
start failed for good — gets it, started like the application workflow starts it
(:func:`activities.benefit.start_benefit_workflow`, the rules of the edition kept at
submission), once its application closed ``min_age`` ago. A benefit workflow that has ended is
left alone.

Open out-of-area filings (:mod:`chronic.filings`) get the same pass: a filing recorded
without a workflow is started with :func:`chronic.filings.filing_input`, one whose workflow
ended before deciding is closed (:func:`chronic.filings.close_filing`, the FILING_CLOSED SMS).

Safe when several run at once (one per review worker): a start uses ``REJECT_DUPLICATE`` and
``FAIL`` (a second start raises and is ignored), a close is a conditional update (open row,
seq below :data:`~models.messages.CLOSE_SEQ`) and the SMS is keyed by the application.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from sqlmodel import col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.benefit import start_benefit_workflow
from chronic.closing import RECONCILER, close_application, ending_of
from chronic.db import Database
from chronic.filings import close_filing, filing_input, start_filing
from chronic.policies import edition
from chronic.privacy import applicant_key
from chronic.settings import Settings
from chronic.submission import application_input, is_grade_3a, start_application
from models.benefit import WORKFLOW_TYPE as BENEFIT_WORKFLOW
from models.benefit import BenefitRules, BenefitStart, BenefitStatus
from models.benefit import workflow_id as benefit_workflow_id
from models.domain import FilingType
from models.tables import Application, Benefit, FilingRecord, Hospital, InsuredPerson
from workflows.application import ApplicationWorkflow
from workflows.filing import WORKFLOW_TYPE as FILING_WORKFLOW

log = logging.getLogger("chronic.reconciler")

_CONCURRENCY = 8
"""Describes in flight at once: enough for thousands of open rows a minute, gentle on Temporal."""


@dataclass
class Report:
    """What one pass did (application and filing IDs; ``benefit-…`` for benefit workflows)."""

    started: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    described: list[str] = field(default_factory=list)
    """Open rows whose workflow was not listed as running (the only ones described)."""

    def __bool__(self) -> bool:
        return bool(self.started or self.closed or self.errors)


@dataclass(frozen=True)
class _Open:
    id: str
    region: str
    disease_code: str
    id_number: str
    submitted_at: datetime
    diagnosing_hospital: str
    diagnosed_at_grade_3a: bool
    out_of_area: bool
    policy_digest: str | None  # the edition kept at submission (None: recorded before)


@dataclass(frozen=True)
class _Issued:
    """An active benefit row, with what its workflow's start needs."""

    application_id: str
    region: str
    id_number: str
    policy_digest: str | None


@dataclass(frozen=True)
class _OpenFiling:
    id: str
    filing_type: FilingType
    insured_place: str
    id_number: str
    submitted_at: datetime


class _Close(Protocol):
    """``close_application`` or ``close_filing``: close an open row, tell the person."""

    async def __call__(
        self,
        db: Database,
        client: Client,
        case_id: str,
        /,
        *,
        reason: str,
        sms_reason: str,
        actor: str,
    ) -> bool: ...


class Reconciler:
    """Makes rows and workflows agree; see the module docstring."""

    def __init__(
        self,
        db: Database,
        client: Client,
        settings: Settings,
        *,
        min_age: timedelta | None = None,
        search_attributes: bool = True,
    ) -> None:
        self.db = db
        self.client = client
        self.settings = settings
        self.min_age = (
            min_age
            if min_age is not None
            else timedelta(seconds=settings.reconcile_min_age_seconds)
        )
        self.search_attributes = search_attributes

    async def run_forever(self, interval: timedelta) -> None:
        """A pass now, then one every ``interval``; a failed pass is logged and retried."""
        while True:
            try:
                report = await self.run_once()
                if report:
                    log.info(
                        "reconciler: started %s, closed %s, errors %s",
                        report.started,
                        report.closed,
                        report.errors,
                    )
            except Exception:  # Postgres or Temporal away: the next pass tries again
                log.exception("reconciler pass failed; next in %s", interval)
            await asyncio.sleep(interval.total_seconds())

    async def run_once(self) -> Report:
        """One pass over the open rows."""
        report = Report()
        limit = asyncio.Semaphore(_CONCURRENCY)

        async def one(
            case_id: str,
            submitted_at: datetime,
            start: Callable[[], Awaitable[object]],
            close: _Close,
        ) -> None:
            async with limit:
                try:
                    await self._reconcile(case_id, submitted_at, start, close, report)
                except Exception as error:  # one bad row does not stop the pass
                    log.warning("reconciler: %s: %s", case_id, error)
                    report.errors.append(case_id)

        rows, running = await self._open_rows(), await self._running()
        await asyncio.gather(
            *(
                one(row.id, row.submitted_at, partial(self._start, row), close_application)
                for row in rows
                if row.id not in running
            )
        )
        await self._start_benefits(report, limit)
        filings = await self._open_filings()
        if filings:
            running = await self._running(FILING_WORKFLOW)
            await asyncio.gather(
                *(
                    one(f.id, f.submitted_at, partial(self._start_filing, f), close_filing)
                    for f in filings
                    if f.id not in running
                )
            )
        return report

    async def _running(self, workflow_type: str = ApplicationWorkflow.__name__) -> set[str]:
        """IDs of the running workflows of a type; empty when the server cannot list them
        (then every open row is described, as visibility may lag anyway)."""
        query = f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running'"
        try:
            return {execution.id async for execution in self.client.list_workflows(query)}
        except RPCError as error:
            log.debug("reconciler: cannot list running workflows (%s); describing all", error)
            return set()

    async def _open_rows(self) -> list[_Open]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Application, col(InsuredPerson.id_number), Hospital)
                .join(InsuredPerson, col(InsuredPerson.id) == col(Application.person_id))
                .join(Hospital, col(Hospital.code) == col(Application.diagnosing_hospital_code))
                .where(col(Application.closed_at).is_(None))
                .order_by(col(Application.submitted_at))
            )
            return [
                _Open(
                    a.id,
                    a.region,
                    a.disease_code,
                    id_number,
                    a.submitted_at,
                    a.diagnosing_hospital_code,
                    is_grade_3a(hospital),
                    a.out_of_area,
                    a.policy_digest,
                )
                for a, id_number, hospital in rows.all()
            ]

    async def _start_benefits(self, report: Report, limit: asyncio.Semaphore) -> None:
        """Start the workflow of every active benefit that has none (see the module doc)."""
        issued = await self._issued_benefits()
        if not issued:
            return
        running = await self._running(BENEFIT_WORKFLOW)

        async def one(benefit: _Issued) -> None:
            target = benefit_workflow_id(benefit.application_id)
            async with limit:
                try:
                    if await self._start_benefit(benefit, target):
                        log.info("reconciler: started the benefit workflow %s", target)
                        report.started.append(target)
                except Exception as error:  # one bad row does not stop the pass
                    log.warning("reconciler: %s: %s", target, error)
                    report.errors.append(target)

        await asyncio.gather(
            *(one(b) for b in issued if benefit_workflow_id(b.application_id) not in running)
        )

    async def _issued_benefits(self) -> list[_Issued]:
        """Active and suspended benefits whose application closed at least ``min_age`` ago
        (younger ones: the application workflow is starting theirs right now)."""
        closed_before = datetime.now(UTC) - self.min_age
        async with self.db.session() as session:
            rows = await session.exec(
                select(
                    col(Benefit.application_id),
                    col(Application.region),
                    col(InsuredPerson.id_number),
                    col(Application.policy_digest),
                )
                .join(Application, col(Application.id) == col(Benefit.application_id))
                .join(InsuredPerson, col(InsuredPerson.id) == col(Benefit.person_id))
                .where(
                    col(Benefit.status).in_([BenefitStatus.ACTIVE, BenefitStatus.SUSPENDED]),
                    col(Application.closed_at) < closed_before,
                )
                .order_by(col(Benefit.id))
            )
            return [_Issued(*row) for row in rows.all()]

    async def _start_benefit(self, benefit: _Issued, target: str) -> bool:
        """Start the benefit's workflow unless it exists (running or ended); True if started."""
        try:
            await self.client.get_workflow_handle(target).describe()
            return False  # it exists: running (visibility lagged) or ended
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        kept = None
        if benefit.policy_digest is not None:
            async with self.db.session() as session:
                kept = await edition(session, benefit.policy_digest)
        start = BenefitStart(
            application_id=benefit.application_id,
            rules=BenefitRules.of(kept or self.settings.policy(benefit.region)),
            applicant_key=applicant_key(benefit.id_number, self.settings),
            search_attributes=self.search_attributes,
        )
        await start_benefit_workflow(self.db, self.client, start)
        return True

    async def _open_filings(self) -> list[_OpenFiling]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(FilingRecord, col(InsuredPerson.id_number))
                .join(InsuredPerson, col(InsuredPerson.id) == col(FilingRecord.person_id))
                .where(col(FilingRecord.closed_at).is_(None))
                .order_by(col(FilingRecord.submitted_at))
            )
            return [
                _OpenFiling(f.id, f.filing_type, f.insured_place, id_number, f.submitted_at)
                for f, id_number in rows.all()
            ]

    async def _reconcile(
        self,
        case_id: str,
        submitted_at: datetime,
        start: Callable[[], Awaitable[object]],
        close: _Close,
        report: Report,
    ) -> None:
        """One open row (an application or a filing): start its missing workflow, or close the
        row of a workflow that ended without closing it."""
        report.described.append(case_id)
        try:
            description = await self.client.get_workflow_handle(case_id).describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            if submitted_at > datetime.now(UTC) - self.min_age:
                return  # a submission may be starting it right now
            try:
                await start()
            except WorkflowAlreadyStartedError:
                return  # another reconciler (or the submission) was first
            log.info("reconciler: started the workflow of %s", case_id)
            report.started.append(case_id)
            return
        ending = await ending_of(self.client, description)
        if ending is None:
            return
        if await close(
            self.db,
            self.client,
            case_id,
            reason=ending.reason,
            sms_reason=ending.sms_reason,
            actor=RECONCILER,
        ):
            log.info("reconciler: closed %s: %s", case_id, ending.reason)
            report.closed.append(case_id)

    async def _start(self, row: _Open) -> object:
        # The edition kept at submission (read only for the few rows started here): rules
        # changed since apply to new cases only.
        kept = None
        if row.policy_digest is not None:
            async with self.db.session() as session:
                kept = await edition(session, row.policy_digest)
        request = application_input(
            row.id,
            policy=kept or self.settings.policy(row.region),
            disease_code=row.disease_code,
            id_number=row.id_number,
            submitted_at=row.submitted_at,
            settings=self.settings,
            search_attributes=self.search_attributes,
            diagnosing_hospital=row.diagnosing_hospital,
            diagnosed_at_grade_3a=row.diagnosed_at_grade_3a,
            out_of_area=row.out_of_area,
        )
        return await start_application(self.client, request)

    async def _start_filing(self, row: _OpenFiling) -> object:
        request = filing_input(
            row.id,
            filing_type=row.filing_type,
            insured_place=row.insured_place,
            id_number=row.id_number,
            submitted_at=row.submitted_at,
            settings=self.settings,
            search_attributes=self.search_attributes,
        )
        return await start_filing(self.client, request)
