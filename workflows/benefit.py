"""The benefit after approval: one 门诊慢特病 benefit from its first day to its end (issue 12).

Started when the benefit certificate is issued (the application workflow's ``start_benefit``
step, ID ``benefit-<application id>``), it holds the benefit — disease, designated hospital,
designated pharmacy, validity, status — and lives as long as the benefit does:

- **validity** (seed 002 rule 8): a durable timer to the end of the last valid day in the
  region's time; a reminder SMS ``benefit_reminder_before`` earlier; at the end the renewal
  step decides, and an unrenewed benefit ends with an SMS. A long-term benefit (Jilin, seed
  003) has no timer at all.
- **designated hospital or pharmacy** (seed 002 rule 10, seed 001, seed 003): Update
  ``change_designation`` (kind hospital | pharmacy), at most the policy's number per calendar
  year of the region (None = unlimited, Jilin), only to a hospital of the region's register.
- **hospital stays** (seed 003: no outpatient benefit while in hospital): Updates ``admit`` and
  ``discharge``, recorded by the office, suspend and resume the benefit in regions whose policy
  says so.

Validators refuse what may not happen, in plain words and before anything reaches the
history. Each change is written by an activity (benefit row, ``benefit_event``, audit trail
with the actor), then the person is told by SMS beside the process. Past
``history_event_limit`` events the workflow continues as new with its state, so a benefit
that lasts for decades keeps a bounded history. No personal data: the person is an HMAC key.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models import text
    from models.benefit import (
        WORKFLOW_TYPE,
        BenefitEvent,
        BenefitEventKind,
        BenefitInput,
        BenefitRecorded,
        BenefitState,
        BenefitStatus,
        BenefitView,
        ChangeDesignation,
        DesignationChange,
        DesignationKind,
        HospitalStay,
        RecordStay,
        RenewalCheck,
        Revoke,
        workflow_id,
    )
    from models.domain import HOSPITAL_CODE, PHARMACY_CODE
    from models.notifications import SmsRequest, SmsTemplate
    from models.roles.intake import IntakeRole
    from models.roles.review import BenefitRole
    from workflows.sms import Deliveries
    from workflows.steps import run_step

RENEWAL_PATCH = "benefit-renewal-check"
"""The release that checks settlements at the end of validity (before it, benefits ended)."""

_UNSET = object()
_OVER = (BenefitStatus.ENDED, BenefitStatus.REVOKED)


class _ContinueAsNew(Exception):
    """The history has grown past the limit: go on in a fresh run."""


@workflow.defn(name=WORKFLOW_TYPE)
class BenefitWorkflow:
    @workflow.init
    def __init__(self, request: BenefitInput) -> None:
        self._request = request
        self._rules = request.rules
        self._zone = timezone(timedelta(hours=request.rules.timezone_offset_hours))
        self._status = BenefitStatus.ACTIVE
        self._hospital = request.designated_hospital_code
        self._hospital_name = request.designated_hospital_name
        self._pharmacy = request.pharmacy_code
        self._valid_to = request.valid_to
        self._seq = 0  # benefit events written (the row applies only newer ones)
        self._changes: list[DesignationChange] = []
        self._stays: list[HospitalStay] = []
        self._reminded = False
        self._ended_at: datetime | None = None
        self._hospitals: set[str] | None = None  # the region's register, read at the start
        self._pharmacies: set[str] | None = None  # no pharmacy register yet: codes by pattern
        self._writing = asyncio.Lock()  # one change written at a time: the limit holds
        self._changed = False  # a handler recorded something: the main loop looks again
        self._waiting_for = "the benefit's records"
        self._deliveries = Deliveries()
        self._published: dict[SearchAttributeKey[Any], Any] = {}
        if request.resume is not None:
            self._restore(request.resume)

    # ---- the benefit's life ---------------------------------------------------------------

    @workflow.run
    async def run(self, request: BenefitInput) -> BenefitView:
        if request.resume is None:
            await self._record(BenefitEventKind.STARTED, actor="system")
        await self._load_registers()
        try:
            while True:
                await self._valid_until_the_end()
                if self._status == BenefitStatus.REVOKED:
                    break
                renewed_to = await self._renewal()
                if renewed_to is None:
                    break
                self._valid_to, self._reminded = renewed_to, False
        except _ContinueAsNew:
            await self._quiet()
            workflow.continue_as_new(request.model_copy(update={"resume": self._state()}))
        if self._status != BenefitStatus.REVOKED:
            await self._end()
        self._ended_at = self._ended_at or workflow.now()
        self._waiting_for = str(self._status)
        self._publish()
        await self._quiet()
        return self.view()

    async def _quiet(self) -> None:
        """Until no change is being made and every SMS is handed over: a change that arrives
        while the deliveries finish is answered in this run, never cut off by its end."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._deliveries.done()
            if workflow.all_handlers_finished():
                return

    async def _valid_until_the_end(self) -> None:
        """Wait for the reminder, then the end of validity; a long-term benefit never ends here.

        Changes arrive as Updates meanwhile; after each the history's length is checked.
        """
        while True:
            if self._status == BenefitStatus.REVOKED:
                return
            if workflow.info().get_current_history_length() > self._rules.history_event_limit:
                raise _ContinueAsNew
            now = workflow.now()
            end_at = self._end_at()
            if end_at is not None and now >= end_at:
                return
            reminder_at = self._reminder_at()
            if reminder_at is not None and not self._reminded and now >= reminder_at:
                await self._remind()
                continue
            wake_at = end_at if self._reminded else reminder_at
            self._waiting_for = self._waiting_line()
            self._publish()
            self._changed = False
            if wake_at is None:  # long-term: no timer, only changes wake it
                await workflow.wait_condition(lambda: self._changed)
                continue
            with contextlib.suppress(TimeoutError):  # the moment came: look again
                await workflow.wait_condition(
                    lambda: self._changed,
                    timeout=max(wake_at - now, timedelta(0)),
                    timeout_summary="reminder before the end of validity"
                    if wake_at == reminder_at
                    else f"valid until {self._valid_to}",
                )

    async def _renewal(self) -> date | None:
        """Seed 002 rule 9: at the end of validity the benefit continues for another period
        when the person had at least ``renewal_min_settlement_months`` months of normal
        settlements in the ``renewal_lookback_months`` before the end date.

        Returns the new last valid day when renewed (row, event, audit, SMS), None when the
        benefit ends. Benefits started before renewals were checked (no ``validity`` in their
        rules, or a history from before the patch) end as they did.
        """
        rules = self._rules
        if not workflow.patched(RENEWAL_PATCH) or rules.validity is None:
            return None
        assert self._valid_to is not None
        self._waiting_for = "the renewal check over the person's settlements"
        self._publish()
        found = await run_step(
            BenefitRole.renewal_check,
            RenewalCheck(
                application_id=self._request.application_id,
                ends_on=self._valid_to,
                lookback_months=rules.renewal_lookback_months,
                min_months=rules.renewal_min_settlement_months,
            ),
            queue=BenefitRole.QUEUE,
            summary=f"renewal check: {rules.renewal_min_settlement_months} of "
            f"{rules.renewal_lookback_months} months",
        )
        if not found.passes(rules.renewal_min_settlement_months):
            return None
        renewed_to = self._valid_to + rules.validity
        async with self._writing:
            await self._record(
                BenefitEventKind.RENEWED,
                actor="system",
                status=self._status,
                on=renewed_to,
            )
        await self._sms(
            SmsTemplate.BENEFIT_RENEWED, f"renewed:{renewed_to}", valid_to=str(renewed_to)
        )
        return renewed_to

    async def _remind(self) -> None:
        assert self._valid_to is not None
        self._reminded = True
        await self._sms(
            SmsTemplate.BENEFIT_ENDING, f"ending:{self._valid_to}", valid_to=str(self._valid_to)
        )

    async def _end(self) -> None:
        """The validity ran out: row ended, event and audit, the person told."""
        async with self._writing:
            await self._record(BenefitEventKind.ENDED, actor="system", status=BenefitStatus.ENDED)
            self._ended_at = workflow.now()
        await self._sms(SmsTemplate.BENEFIT_ENDED, "ended", valid_to=str(self._valid_to))
        self._waiting_for = "ended"
        self._publish()

    def _end_at(self) -> datetime | None:
        """The first moment after the last valid day, in the region's time (None: long-term)."""
        if self._valid_to is None:
            return None
        return datetime.combine(self._valid_to + timedelta(days=1), time(0), tzinfo=self._zone)

    def _reminder_at(self) -> datetime | None:
        end_at = self._end_at()
        return None if end_at is None else end_at - self._rules.reminder_before

    def _waiting_line(self) -> str:
        if self._valid_to is None:
            return "long-term: valid until revoked"
        if not self._reminded:
            reminder_at = self._reminder_at()
            assert reminder_at is not None
            return f"valid until {self._valid_to}; reminder on {_day(reminder_at, self._zone)}"
        return f"valid until {self._valid_to}; then the renewal check"

    # ---- changes (Updates) -------------------------------------------------------------------

    @workflow.update
    async def change_designation(self, change: ChangeDesignation) -> BenefitView:
        """A new designated hospital (or pharmacy); returns the benefit as it now stands."""
        async with self._writing:
            problem = self._change_problem(change)  # another change may have come first
            if problem is not None:
                raise ApplicationError(problem, non_retryable=True)
            kind = change.kind
            before = self._hospital if kind == DesignationKind.HOSPITAL else self._pharmacy
            event = (
                BenefitEventKind.HOSPITAL_CHANGED
                if kind == DesignationKind.HOSPITAL
                else BenefitEventKind.PHARMACY_CHANGED
            )
            recorded = await self._record(
                event,
                actor=change.actor,
                from_code=before,
                hospital=change.code if kind == DesignationKind.HOSPITAL else None,
                pharmacy=change.code if kind == DesignationKind.PHARMACY else None,
            )
            if recorded.problem is not None:  # the register changed since it was read
                await self._load_registers()
                raise ApplicationError(recorded.problem, non_retryable=True)
            self._changes.append(
                DesignationChange(
                    kind=kind,
                    from_code=before,
                    to_code=change.code,
                    at=workflow.now(),
                    actor=change.actor,
                )
            )
            name = change.code
            if kind == DesignationKind.HOSPITAL:
                self._hospital, self._hospital_name = change.code, recorded.designated_hospital_name
                name = recorded.designated_hospital_name or change.code
            else:
                self._pharmacy = change.code
            self._changed = True
            self._publish()
            key = f"{kind}:{self._seq}"
        await self._sms(
            SmsTemplate.BENEFIT_DESIGNATION_CHANGED,
            key,
            what=kind.label,
            name=name,
            on=str(self._today()),
        )
        return self.view()

    @change_designation.validator
    def _validate_change_designation(self, change: ChangeDesignation) -> None:
        problem = self._change_problem(change)
        if problem is not None:
            raise ValueError(problem)

    def _change_problem(self, change: ChangeDesignation) -> str | None:
        """Why ``change`` may not happen now (None: it may)."""
        over = self._over_problem()
        if over is not None:
            return over
        actor = text.problem(change.actor, field="the actor", max_length=64)
        if actor is not None:
            return actor
        kind, code, region = change.kind, change.code, self._rules.region
        if kind == DesignationKind.HOSPITAL:
            if not HOSPITAL_CODE.match(code):
                return (
                    f"{code!r} is not a hospital code (a capital letter, then up to 15 letters "
                    "or digits): use the code of the region's register"
                )
            if code == self._hospital:
                return f"{code} is already the designated hospital of this benefit"
            if self._hospitals is None:
                return "the benefit's records are being read: try again in a moment"
            if code not in self._hospitals:
                return (
                    f"no hospital with code {code} in the {region} register: the designated "
                    "hospital must be one of the region's designated hospitals"
                )
        else:
            if not PHARMACY_CODE.match(code):
                return (
                    f"{code!r} is not a pharmacy code (a capital letter, then up to 15 letters "
                    "or digits): use the code of the region's register"
                )
            if code == self._pharmacy:
                return f"{code} is already the designated pharmacy of this benefit"
            if self._pharmacies is not None and code not in self._pharmacies:
                return f"no pharmacy with code {code} in the {region} register"
        return self._limit_problem(kind)

    def _limit_problem(self, kind: DesignationKind) -> str | None:
        """The per-calendar-year limit (the region's calendar year)."""
        limit = self._rules.changes_per_year
        if limit is None:
            return None
        year = self._today().year
        used = self._changes_in(kind, year)
        if used < limit:
            return None
        return (
            f"the designated {kind.value} of {self._request.application_id} was already changed "
            f"{_times(used)} in {year}: {self._rules.region} allows {_times(limit)} per calendar "
            f"year; the next change is possible from {year + 1}-01-01"
        )

    def _changes_in(self, kind: DesignationKind, year: int) -> int:
        return sum(
            1 for c in self._changes if c.kind == kind and c.at.astimezone(self._zone).year == year
        )

    @workflow.update
    async def admit(self, stay: RecordStay) -> BenefitView:
        """The office records an admission: the benefit is suspended while in hospital."""
        async with self._writing:
            problem = self._admit_problem(stay)
            if problem is not None:
                raise ApplicationError(problem, non_retryable=True)
            await self._record(
                BenefitEventKind.ADMITTED,
                actor=stay.actor,
                on=stay.on,
                status=BenefitStatus.SUSPENDED,
            )
            self._stays.append(HospitalStay(admitted_on=stay.on, admitted_by=stay.actor))
            self._changed = True
            self._publish()
        await self._sms(SmsTemplate.BENEFIT_SUSPENDED, f"admitted:{stay.on}", on=str(stay.on))
        return self.view()

    @admit.validator
    def _validate_admit(self, stay: RecordStay) -> None:
        problem = self._admit_problem(stay)
        if problem is not None:
            raise ValueError(problem)

    def _admit_problem(self, stay: RecordStay) -> str | None:
        problem = self._stay_problem(stay)
        if problem is not None:
            return problem
        current = self._current_stay()
        if current is not None:
            return (
                f"already admitted on {current.admitted_on} and not discharged: record the "
                "discharge first"
            )
        if stay.on < self._request.valid_from:
            return f"{stay.on} is before the benefit started ({self._request.valid_from})"
        if self._stays:
            last = self._stays[-1].discharged_on
            if last is not None and stay.on < last:
                return f"{stay.on} is before the last discharge ({last})"
        return None

    @workflow.update
    async def discharge(self, stay: RecordStay) -> BenefitView:
        """The office records the discharge: the benefit is active again."""
        async with self._writing:
            problem = self._discharge_problem(stay)
            if problem is not None:
                raise ApplicationError(problem, non_retryable=True)
            current = self._current_stay()
            assert current is not None
            await self._record(
                BenefitEventKind.DISCHARGED,
                actor=stay.actor,
                on=stay.on,
                status=BenefitStatus.ACTIVE,
            )
            self._stays[-1] = current.model_copy(
                update={"discharged_on": stay.on, "discharged_by": stay.actor}
            )
            self._changed = True
            self._publish()
        await self._sms(SmsTemplate.BENEFIT_RESUMED, f"discharged:{stay.on}", on=str(stay.on))
        return self.view()

    @discharge.validator
    def _validate_discharge(self, stay: RecordStay) -> None:
        problem = self._discharge_problem(stay)
        if problem is not None:
            raise ValueError(problem)

    def _discharge_problem(self, stay: RecordStay) -> str | None:
        problem = self._stay_problem(stay)
        if problem is not None:
            return problem
        current = self._current_stay()
        if current is None:
            return "not admitted: there is no hospital stay to end (record the admission first)"
        if stay.on < current.admitted_on:
            return f"{stay.on} is before the admission ({current.admitted_on})"
        return None

    def _stay_problem(self, stay: RecordStay) -> str | None:
        """What admit and discharge refuse alike: the policy, an ended benefit, a future day."""
        if not self._rules.suspended_while_inpatient:
            return (
                f"the {self._rules.region} policy does not suspend the benefit during a hospital "
                "stay: there is nothing to record"
            )
        over = self._over_problem()
        if over is not None:
            return over
        actor = text.problem(stay.actor, field="the actor", max_length=64)
        if actor is not None:
            return actor
        if stay.on > self._today():
            return f"{stay.on} is in the future: record the stay on the day it happens"
        return None

    @workflow.update
    async def revoke(self, revocation: Revoke) -> BenefitView:
        """Take the benefit back from a day (an audit found the records forged); the run ends.

        The caller records the finding and tells the person (``chronic audit decide``); this
        stops the benefit's timers and writes the event with its actor."""
        async with self._writing:
            problem = self._revoke_problem(revocation)
            if problem is not None:
                raise ApplicationError(problem, non_retryable=True)
            await self._record(
                BenefitEventKind.REVOKED,
                actor=revocation.actor,
                on=revocation.on,
                status=BenefitStatus.REVOKED,
            )
            self._valid_to = revocation.on
            self._changed = True
            self._publish()
        return self.view()

    @revoke.validator
    def _validate_revoke(self, revocation: Revoke) -> None:
        problem = self._revoke_problem(revocation)
        if problem is not None:
            raise ValueError(problem)

    def _revoke_problem(self, revocation: Revoke) -> str | None:
        over = self._over_problem()
        if over is not None:
            return over
        for value, field, limit in (
            (revocation.actor, "the actor", 64),
            (revocation.reason, "the reason", 500),
        ):
            problem = text.problem(value, field=field, max_length=limit)
            if problem is not None:
                return problem
        if not revocation.reason.strip():
            return "say why the benefit is revoked"
        if revocation.on < self._request.valid_from:
            return f"{revocation.on} is before the benefit began ({self._request.valid_from})"
        return None

    def _over_problem(self) -> str | None:
        if self._status in _OVER or self._ended_at is not None:
            return (
                f"the benefit of {self._request.application_id} "
                f"{'was revoked' if self._status == BenefitStatus.REVOKED else 'has ended'}: "
                "nothing more can be changed"
            )
        return None

    def _current_stay(self) -> HospitalStay | None:
        if self._stays and self._stays[-1].discharged_on is None:
            return self._stays[-1]
        return None

    # ---- steps that write ------------------------------------------------------------------

    async def _record(
        self,
        kind: BenefitEventKind,
        *,
        actor: str,
        status: BenefitStatus | None = None,
        on: date | None = None,
        from_code: str | None = None,
        hospital: str | None = None,
        pharmacy: str | None = None,
    ) -> BenefitRecorded:
        """Write one event (row, ``benefit_event``, audit); the sequence moves on only when it
        was written."""
        seq = self._seq + 1
        recorded: BenefitRecorded = await run_step(
            BenefitRole.record_benefit_event,
            BenefitEvent(
                application_id=self._request.application_id,
                seq=seq,
                kind=kind,
                at=workflow.now(),
                actor=actor,
                status=status or self._status,
                on=on,
                designated_hospital_code=hospital,
                pharmacy_code=pharmacy,
                from_code=from_code,
            ),
            queue=BenefitRole.QUEUE,
            summary=f"benefit {kind}",
        )
        if recorded.problem is None:
            self._seq = seq
            self._status = status or self._status
            if kind == BenefitEventKind.STARTED:
                self._hospital_name = recorded.designated_hospital_name
        return recorded

    async def _load_registers(self) -> None:
        """The region's hospitals, for the validator of a change (pharmacies: by pattern)."""
        register = await run_step(
            IntakeRole.hospital_register,
            self._rules.region,
            queue=IntakeRole.QUEUE,
            summary="hospital register",
        )
        self._hospitals = {h.code for h in register}

    async def _sms(self, template: SmsTemplate, step: str, **params: str) -> None:
        """Tell the person beside the process: exactly once per key, retried until sent."""
        await self._deliveries.send(
            SmsRequest(
                dedup_key=f"{workflow_id(self._request.application_id)}:{step}",
                template=template,
                application_id=self._request.application_id,
                params=params,
            )
        )

    # ---- continue-as-new -------------------------------------------------------------------

    def _state(self) -> BenefitState:
        year = self._today().year
        return BenefitState(
            status=self._status,
            designated_hospital_code=self._hospital,
            designated_hospital_name=self._hospital_name,
            pharmacy_code=self._pharmacy,
            valid_to=self._valid_to,
            event_seq=self._seq,
            changes=tuple(c for c in self._changes if c.at.astimezone(self._zone).year >= year),
            stays=tuple(self._stays[-1:]),  # the current (or last) stay; the rows keep them all
            reminded=self._reminded,
        )

    def _restore(self, state: BenefitState) -> None:
        self._status = state.status
        self._hospital, self._hospital_name = (
            state.designated_hospital_code,
            state.designated_hospital_name,
        )
        self._pharmacy = state.pharmacy_code
        self._valid_to = state.valid_to
        self._seq = state.event_seq
        self._changes = list(state.changes)
        self._stays = list(state.stays)
        self._reminded = state.reminded

    # ---- what operators and the CLI see ----------------------------------------------------

    def _today(self) -> date:
        return workflow.now().astimezone(self._zone).date()

    def _publish(self) -> None:
        """Search attributes (only those that changed: each upsert is an event) and details."""
        end_at = self._end_at()
        values: dict[SearchAttributeKey[Any], Any] = {
            sa.BENEFIT_STATUS: self._status.value,
            sa.REGION: self._rules.region,
            sa.DISEASE_CODE: self._request.disease_code,
            sa.APPLICANT_KEY: self._request.applicant_key,
            sa.BENEFIT_VALID_TO: end_at,
        }
        changed = {k: v for k, v in values.items() if self._published.get(k, _UNSET) != v}
        self._published.update(changed)
        if changed and self._request.search_attributes:
            workflow.upsert_search_attributes(
                [k.value_unset() if v is None else k.value_set(v) for k, v in changed.items()]
            )
        validity = f"{self._request.valid_from} → {self._valid_to or 'long-term'}"
        lines = [
            f"Benefit **{self._status}** · {self._request.disease_code} · {validity}",
            f"Designated hospital {self._hospital} {self._hospital_name}".rstrip(),
        ]
        if self._pharmacy:
            lines.append(f"Designated pharmacy {self._pharmacy}")
        current = self._current_stay()
        if current is not None:
            lines.append(f"In hospital since {current.admitted_on}: suspended")
        lines += ["", f"Next: {self._waiting_for}"]
        workflow.set_current_details("\n".join(lines))

    @workflow.query
    def view(self) -> BenefitView:
        """The benefit as it stands (no personal data)."""
        year = self._today().year
        limit = self._rules.changes_per_year
        used = {kind: self._changes_in(kind, year) for kind in DesignationKind}
        current = self._current_stay()
        return BenefitView(
            application_id=self._request.application_id,
            region=self._rules.region,
            disease_code=self._request.disease_code,
            status=self._status,
            designated_hospital_code=self._hospital,
            designated_hospital_name=self._hospital_name,
            pharmacy_code=self._pharmacy,
            valid_from=self._request.valid_from,
            valid_to=self._valid_to,
            changes_per_year=limit,
            changes_this_year=used,
            next_change_from={
                kind: date(year + 1, 1, 1)
                for kind, n in used.items()
                if limit is not None and n >= limit
            },
            suspended_while_inpatient=self._rules.suspended_while_inpatient,
            in_hospital_since=current.admitted_on if current is not None else None,
            stays=tuple(self._stays),
            reminder_at=None if self._reminded else self._reminder_at(),
            ends_at=self._end_at(),
            waiting_for="ended" if self._ended_at else self._waiting_for,
            ended_at=self._ended_at,
        )


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _day(moment: datetime, zone: timezone) -> str:
    return moment.astimezone(zone).date().isoformat()


__all__ = ["WORKFLOW_TYPE", "BenefitWorkflow"]
