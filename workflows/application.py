"""The application workflow: one 门诊慢特病 application from submission to result (seed 002).

Reads like the Sanmenxia process: intake (refuse / return / accept) → random assignment with
the accept window → initial review and re-review by different experts (one final review on the
instant track; a third expert when the two disagree) → SMS result → benefit certificate.

Expert and clerk actions arrive as Updates whose validators refuse a wrong expert, a lapsed
offer or a second decision without writing history. Handlers only change state; the main
loop makes every database write, so there is one writer and one order of events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models.domain import (
        ApplicationStatus,
        OfferStatus,
        ReviewDecision,
        ReviewStage,
    )
    from models.messages import (
        AcceptOffer,
        ApplicationInput,
        BenefitIssued,
        BenefitRequest,
        Decide,
        DecisionView,
        DeclineOffer,
        DrawRequest,
        DrawResult,
        IntakeOutcome,
        IntakeRequest,
        MaterialsRound,
        OfferAnswer,
        OfferMade,
        OfferView,
        Progress,
        RequestMaterials,
        Resubmission,
        ReviewRecord,
        SlaRequest,
        StatusChange,
        StrikeOutcome,
    )
    from models.notifications import SmsRequest, SmsTemplate
    from workers import queues

_DB_ACTIVITY = timedelta(seconds=30)
_SMS_ACTIVITY = timedelta(seconds=60)
# Database and provider outages are retried with backoff until they pass; only errors marked
# non-retryable (a missing record, an invalid number) stop the retries.
_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


_UNSET = object()  # "never published", distinct from a published None (attribute unset)


class ApplicationClosed(Exception):
    """Raised inside the workflow when the application ends before a review result."""


@dataclass
class _Offer:
    """An offer as the workflow tracks it while it is open."""

    made: OfferMade
    stage: ReviewStage
    status: OfferStatus = OfferStatus.PENDING
    reason: str | None = None
    answered_at: datetime | None = None
    decision_deadline: datetime | None = None
    decision: Decide | None = None
    materials_note: str | None = None
    recorded: bool = False  # the main loop has written the latest answer to the database
    reviews: int = 0  # review rows written for this offer (a materials request, a decision)

    def view(self) -> OfferView:
        return OfferView(
            seq=self.made.seq,
            stage=self.stage,
            expert=self.made.expert_code,
            pool_size=self.made.pool_size,
            status=self.status,
            offered_at=self.made.offered_at,
            accept_deadline=self.made.accept_deadline,
            decision_deadline=self.decision_deadline,
            answered_at=self.answered_at,
            reason=self.reason,
        )


@workflow.defn
class ApplicationWorkflow:
    @workflow.init
    def __init__(self, request: ApplicationInput) -> None:
        self._request = request
        self._policy = request.policy
        disease = request.policy.disease(request.disease_code)
        if disease is None:  # the client validated the form; a changed catalogue ends here
            raise ApplicationError(f"disease {request.disease_code} is not in the catalogue")
        self._disease = disease
        self._zone = timezone(timedelta(hours=request.policy.timezone_offset_hours))
        self._status = ApplicationStatus.SUBMITTED
        self._stage = ReviewStage.INTAKE
        self._round = 1
        self._reasons: tuple[str, ...] = ()
        self._offers: list[_Offer] = []
        self._current: _Offer | None = None
        self._decisions: list[DecisionView] = []
        self._resubmission: Resubmission | None = None
        self._resubmission_deadline: datetime | None = None
        self._waiting_for = "intake checks"
        self._sla_due_at: datetime | None = None
        self._sla_breached = False
        self._benefit: BenefitIssued | None = None
        self._finished_at: datetime | None = None
        self._returned = False  # intake sent it back at least once (the Returned filter)
        self._published: dict[SearchAttributeKey[Any], Any] = {}
        self._status_seq = 0  # order of status writes (StatusChange.seq)

    # ---- the process ---------------------------------------------------------------------

    @workflow.run
    async def run(self, request: ApplicationInput) -> Progress:
        self._sla_due_at = await _step(
            "sla_due_at",
            SlaRequest(
                start=request.submitted_at.astimezone(self._zone),
                working_days=self._policy.sla_working_days_max,
            ),
            queue=queues.INTAKE,
            result_type=datetime,
            summary=f"SLA: {self._policy.sla_working_days_max} working days",
        )
        sla_watch = asyncio.create_task(self._watch_sla())
        await self._set_status(ApplicationStatus.INTAKE, ReviewStage.INTAKE, step="intake")
        await self._sms(SmsTemplate.SUBMITTED, "submitted")
        try:
            await self._intake()
            decision = await self._review()
            await self._result(decision)
        except ApplicationClosed:
            pass
        self._finished_at = workflow.now()
        sla_watch.cancel()
        self._publish()
        # Let a handler that is still answering its caller finish before the run ends.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    async def _intake(self) -> None:
        """Seed 002 step 1–2: insurance, catalogue, quota, materials; refuse, return or accept."""
        while True:
            self._waiting_for = f"intake checks of materials round {self._round}"
            self._publish()
            outcome = await _step(
                "check_intake",
                IntakeRequest(
                    application_id=self._request.application_id,
                    round=self._round,
                    policy=self._policy,
                    checked_at=workflow.now(),
                ),
                queue=queues.INTAKE,
                result_type=IntakeOutcome,
                summary=f"intake checks, round {self._round}",
            )
            if outcome.accepted:
                self._reasons = ()
                return
            self._reasons = outcome.reasons
            reason = "; ".join(outcome.reasons)
            if outcome.refused:
                await self._set_status(
                    ApplicationStatus.REFUSED,
                    ReviewStage.DONE,
                    step="refused",
                    reason=reason,
                    closed=True,
                )
                await self._sms(SmsTemplate.REJECTED, "refused", reason=reason)
                raise ApplicationClosed
            self._returned = True
            self._open_resubmission_window()
            await self._set_status(
                ApplicationStatus.RETURNED,
                ReviewStage.INTAKE,
                step=f"returned:{self._round}",
                reason=reason,
            )
            await self._sms(SmsTemplate.RETURNED, f"returned:{self._round}", reasons=reason)
            if not await self._await_resubmission():
                await self._set_status(
                    ApplicationStatus.CLOSED,
                    ReviewStage.DONE,
                    step="closed",
                    reason="returned and not resubmitted within "
                    f"{_human(self._policy.resubmission_window)}",
                    closed=True,
                )
                raise ApplicationClosed
            await self._set_status(
                ApplicationStatus.INTAKE, ReviewStage.INTAKE, step=f"resubmitted:{self._round}"
            )

    async def _review(self) -> DecisionView:
        """Seed 002 step 6: one final review on the instant track, otherwise two stages.

        When initial review and re-review disagree, a third expert (arbitration) decides:
        two experts who agree settle it, so the result never rests on one dissent.
        """
        if self._disease.instant_track:
            return await self._stage_review(ReviewStage.FINAL_REVIEW)
        initial = await self._stage_review(ReviewStage.INITIAL_REVIEW)
        second = await self._stage_review(ReviewStage.RE_REVIEW)
        if initial.decision == second.decision:
            return second
        return await self._stage_review(ReviewStage.ARBITRATION)

    async def _stage_review(self, stage: ReviewStage) -> DecisionView:
        """Seed 002 step 4: random offers until an expert accepts and decides."""
        await self._set_status(ApplicationStatus.IN_REVIEW, stage, step=f"stage:{stage}")
        while True:
            offer = await self._draw(stage)
            decision = await self._offer_lifecycle(offer)
            if decision is not None:
                self._decisions.append(decision)
                return decision

    async def _draw(self, stage: ReviewStage) -> _Offer:
        reviewers = tuple(d.expert for d in self._decisions)
        while True:
            now = workflow.now()
            drawn = await _step(
                "draw_expert",
                DrawRequest(
                    application_id=self._request.application_id,
                    seq=len(self._offers) + 1,
                    stage=stage,
                    category=self._disease.category,
                    exclude_experts=reviewers,
                    offered_at=now,
                    accept_deadline=now + self._policy.accept_window,
                ),
                queue=queues.ASSIGNMENT,
                result_type=DrawResult,
                summary=f"random draw for {stage} ({self._disease.category})",
            )
            if drawn.offer is not None:
                offer = _Offer(made=drawn.offer, stage=stage)
                self._offers.append(offer)
                self._current = offer
                return offer
            retry_at = now + self._policy.no_expert_retry_interval
            self._waiting_for = (
                f"no eligible {self._disease.category} expert for {stage}; "
                f"drawing again at {_local(retry_at, self._zone)}"
            )
            self._publish()
            await workflow.sleep(
                self._policy.no_expert_retry_interval,
                summary="no eligible expert; draw again in "
                f"{_human(self._policy.no_expert_retry_interval)}",
            )

    async def _offer_lifecycle(self, offer: _Offer) -> DecisionView | None:
        """Seed 002 steps 4–5: accept window, decision deadline, strikes. None = draw again."""
        expert = offer.made.expert_code
        self._waiting_for = (
            f"{expert} to accept or decline by {_local(offer.made.accept_deadline, self._zone)}"
        )
        self._publish()
        try:
            await workflow.wait_condition(
                lambda: offer.status != OfferStatus.PENDING,
                timeout=_remaining(offer.made.accept_deadline),
                timeout_summary=f"accept window for expert {expert}, "
                f"{_human(self._policy.accept_window)}",
            )
        except TimeoutError:
            offer.status = OfferStatus.LAPSED
            offer.reason = f"no answer within {_human(self._policy.accept_window)}"
        if offer.status != OfferStatus.ACCEPTED:
            await self._strike(offer)
            return None
        await self._answer(offer)
        while True:
            assert offer.decision_deadline is not None
            self._waiting_for = (
                f"{expert} to decide by {_local(offer.decision_deadline, self._zone)}"
            )
            self._publish()
            try:
                await workflow.wait_condition(
                    lambda: offer.decision is not None or offer.materials_note is not None,
                    timeout=_remaining(offer.decision_deadline),
                    timeout_summary=f"decision deadline for expert {expert}, "
                    f"{_human(self._policy.decision_window)}",
                )
            except TimeoutError:
                offer.status = OfferStatus.DECISION_LAPSED
                offer.reason = f"no decision within {_human(self._policy.decision_window)}"
                await self._strike(offer)
                return None
            if offer.decision is not None:
                return await self._record_decision(offer, offer.decision)
            await self._materials_requested(offer)

    async def _materials_requested(self, offer: _Offer) -> None:
        """The reviewer asked for more; the resubmission goes back to the same reviewer."""
        note = offer.materials_note or ""
        await self._review_record(offer, ReviewDecision.REQUEST_MATERIALS, note)
        offer.recorded = True
        self._open_resubmission_window()
        await self._set_status(
            ApplicationStatus.MATERIALS_REQUESTED,
            offer.stage,
            step=f"materials_requested:{offer.made.seq}:{self._round}",
            reason=note,
        )
        await self._sms(
            SmsTemplate.MATERIALS_REQUESTED, f"materials:{offer.made.seq}:{self._round}", note=note
        )
        if not await self._await_resubmission():
            await self._set_status(
                ApplicationStatus.CLOSED,
                ReviewStage.DONE,
                step="closed",
                reason="supplementary materials not provided within "
                f"{_human(self._policy.resubmission_window)}",
                closed=True,
            )
            raise ApplicationClosed
        offer.materials_note = None
        offer.decision_deadline = workflow.now() + self._policy.decision_window
        await self._set_status(
            ApplicationStatus.IN_REVIEW, offer.stage, step=f"resubmitted:{self._round}"
        )

    def _open_resubmission_window(self) -> None:
        """From now on the clerk may resubmit (opened before the SMS goes out)."""
        self._resubmission = None
        self._resubmission_deadline = workflow.now() + self._policy.resubmission_window

    async def _await_resubmission(self) -> bool:
        """Wait for corrected materials within the open window; True when they came."""
        assert self._resubmission_deadline is not None
        self._waiting_for = (
            "the applicant to resubmit materials by "
            f"{_local(self._resubmission_deadline, self._zone)}"
        )
        self._publish()
        try:
            await workflow.wait_condition(
                lambda: self._resubmission is not None,
                timeout=_remaining(self._resubmission_deadline),
                timeout_summary=f"resubmission window, {_human(self._policy.resubmission_window)}",
            )
        except TimeoutError:
            return False
        finally:
            self._resubmission_deadline = None
        assert self._resubmission is not None
        self._round += 1
        await _step(
            "record_materials",
            MaterialsRound(
                application_id=self._request.application_id,
                round=self._round,
                materials=self._resubmission.materials,
            ),
            queue=queues.INTAKE,
            result_type=int,
            summary=f"record materials round {self._round}",
        )
        self._resubmission = None
        return True

    async def _result(self, decision: DecisionView) -> None:
        """Seed 002 steps 7–8: SMS result; an approval starts the benefit on its date."""
        if decision.decision == ReviewDecision.APPROVE:
            approved_on = workflow.now().astimezone(self._zone).date()
            validity = self._policy.benefit_validity
            self._benefit = await _step(
                "issue_benefit",
                BenefitRequest(
                    application_id=self._request.application_id,
                    approved_on=approved_on,
                    validity_days=None if validity is None else validity.days,
                ),
                queue=queues.REVIEW,
                result_type=BenefitIssued,
                summary="issue benefit certificate",
            )
            await self._set_status(
                ApplicationStatus.APPROVED, ReviewStage.DONE, step="approved", closed=True
            )
            await self._sms(
                SmsTemplate.APPROVED,
                "approved",
                valid_from=self._benefit.valid_from.isoformat(),
                valid_to=self._benefit.valid_to.isoformat() if self._benefit.valid_to else "长期",
                hospital=self._benefit.designated_hospital_name,
            )
        else:
            await self._set_status(
                ApplicationStatus.REJECTED,
                ReviewStage.DONE,
                step="rejected",
                reason=decision.opinion,
                closed=True,
            )
            await self._sms(SmsTemplate.REJECTED, "rejected", reason=decision.opinion)

    # ---- steps that write -----------------------------------------------------------------

    async def _answer(self, offer: _Offer) -> StrikeOutcome:
        outcome = await _step(
            "answer_offer",
            OfferAnswer(
                offer_id=offer.made.offer_id,
                status=offer.status,
                at=offer.answered_at or workflow.now(),
                reason=offer.reason,
                decision_deadline=offer.decision_deadline,
                strikes_to_disqualify=self._policy.strikes_to_disqualify,
            ),
            queue=queues.ASSIGNMENT,
            result_type=StrikeOutcome,
            summary=f"offer {offer.made.seq} {offer.status} by {offer.made.expert_code}",
        )
        offer.recorded = True
        return outcome

    async def _strike(self, offer: _Offer) -> None:
        """Seed 002 step 5: a decline or lapse is a strike; the limit disqualifies."""
        self._current = None
        outcome = await self._answer(offer)
        if (
            outcome.disqualified
            and outcome.consecutive_strikes == self._policy.strikes_to_disqualify
        ):
            await self._sms(
                SmsTemplate.EXPERT_DISQUALIFIED,
                f"disqualified:{outcome.expert_code}",
                hospital_code=outcome.hospital_code,
                expert_code=outcome.expert_code,
                strikes=str(outcome.consecutive_strikes),
            )

    async def _record_decision(self, offer: _Offer, decide: Decide) -> DecisionView:
        decision = ReviewDecision.APPROVE if decide.approve else ReviewDecision.REJECT
        now = workflow.now()
        await self._review_record(offer, decision, decide.opinion)
        offer.status = OfferStatus.COMPLETED
        await self._answer(offer)
        self._current = None
        return DecisionView(
            stage=offer.stage,
            expert=offer.made.expert_code,
            decision=decision,
            opinion=decide.opinion,
            at=now,
        )

    async def _review_record(self, offer: _Offer, decision: ReviewDecision, opinion: str) -> None:
        offer.reviews += 1
        await _step(
            "record_review",
            ReviewRecord(
                application_id=self._request.application_id,
                offer_id=offer.made.offer_id,
                seq=offer.reviews,
                stage=offer.stage,
                expert_code=offer.made.expert_code,
                decision=decision,
                opinion=opinion,
                decided_at=workflow.now(),
            ),
            queue=queues.REVIEW,
            summary=f"{offer.stage}: {decision} by {offer.made.expert_code}",
        )

    async def _set_status(
        self,
        status: ApplicationStatus,
        stage: ReviewStage,
        *,
        step: str,
        reason: str | None = None,
        closed: bool = False,
    ) -> None:
        self._status, self._stage = status, stage
        self._status_seq += 1
        self._publish()
        await _step(
            "change_status",
            StatusChange(
                application_id=self._request.application_id,
                status=status,
                stage=stage,
                at=workflow.now(),
                step=step,
                seq=self._status_seq,
                reason=reason,
                closed=closed,
            ),
            queue=queues.REVIEW,
            summary=f"status {status}, stage {stage}",
        )

    async def _sms(
        self, template: SmsTemplate, step: str, *, hospital_code: str | None = None, **params: str
    ) -> None:
        """Send an SMS; a provider that refuses it leaves a failed outbox row, not a stuck case."""
        request = SmsRequest(
            dedup_key=f"{self._request.application_id}:{step}",
            template=template,
            application_id=None if hospital_code else self._request.application_id,
            hospital_code=hospital_code,
            params=params,
        )
        try:
            await workflow.execute_activity(
                "send_sms",
                request,
                task_queue=queues.NOTIFICATION,
                start_to_close_timeout=_SMS_ACTIVITY,
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(minutes=5), maximum_attempts=20
                ),
                summary=f"SMS {template}",
            )
        except ActivityError as error:
            workflow.logger.warning("SMS %s not sent: %s", template, error.cause or error)

    async def _watch_sla(self) -> None:
        """Flag the application when the 5–8 working-day target (the upper bound) passes."""
        assert self._sla_due_at is not None
        try:
            await workflow.wait_condition(
                lambda: self._finished_at is not None,
                timeout=_remaining(self._sla_due_at),
                timeout_summary=f"SLA target, {self._policy.sla_working_days_max} working days",
            )
        except TimeoutError:
            self._sla_breached = True
            self._publish()

    # ---- what operators and the CLI see ----------------------------------------------------

    def _publish(self) -> None:
        """Push the state to the search attributes and the UI's current details.

        Only attributes whose value changed are upserted: each upsert is a history event.
        """
        current = self._current
        values: dict[SearchAttributeKey[Any], Any] = {
            sa.APPLICATION_STATUS: self._status.value,
            sa.REVIEW_STAGE: self._stage.value,
            sa.REGION: self._policy.region,
            sa.DISEASE_CODE: self._request.disease_code,
            sa.APPLICANT_KEY: self._request.applicant_key,
            sa.RETURNED: self._returned,
            sa.SLA_BREACHED: self._sla_breached,
            sa.ASSIGNED_EXPERT: current.made.expert_code if current is not None else None,
            sa.SLA_DUE_AT: self._sla_due_at,
        }
        changed = {k: v for k, v in values.items() if self._published.get(k, _UNSET) != v}
        self._published.update(changed)
        if changed and self._request.search_attributes:
            workflow.upsert_search_attributes(
                [k.value_unset() if v is None else k.value_set(v) for k, v in changed.items()]
            )
        workflow.set_current_details(self._details_markdown())

    def _details_markdown(self) -> str:
        lines = [
            f"**{self._status}** · stage **{self._stage}** · "
            f"{self._disease.code} {self._disease.name}",
            "",
            f"Next: {self._waiting_for}",
        ]
        if self._sla_due_at is not None:
            flag = " (**breached**)" if self._sla_breached else ""
            lines.append(f"SLA due {_local(self._sla_due_at, self._zone)}{flag}")
        if self._offers:
            lines += ["", "| # | stage | expert | pool | status |", "|---|---|---|---|---|"]
            lines += [
                f"| {o.made.seq} | {o.stage} | {o.made.expert_code} | {o.made.pool_size} "
                f"| {o.status} |"
                for o in self._offers
            ]
        for d in self._decisions:
            lines.append(f"- {d.stage}: **{d.decision}** by {d.expert}")
        return "\n".join(lines)

    @workflow.query
    def progress(self) -> Progress:
        """Where the application stands: stage, current offer, all offers and decisions."""
        current = self._current
        return Progress(
            application_id=self._request.application_id,
            region=self._policy.region,
            disease_code=self._request.disease_code,
            status=self._status,
            stage=self._stage,
            submitted_at=self._request.submitted_at,
            sla_due_at=self._sla_due_at,
            sla_breached=self._sla_breached,
            waiting_for="finished" if self._finished_at else self._waiting_for,
            current_offer=current.view() if current is not None else None,
            offers=tuple(o.view() for o in self._offers),
            decisions=tuple(self._decisions),
            reasons=self._reasons,
            resubmission_deadline=self._resubmission_deadline,
            materials_round=self._round,
            benefit=self._benefit,
            finished_at=self._finished_at,
        )

    # ---- expert and clerk actions ------------------------------------------------------------

    @workflow.update
    async def accept(self, action: AcceptOffer) -> OfferView:
        """The expert takes the review task (受理); the decision deadline starts now."""
        offer = self._offer_of(action.expert)
        offer.status = OfferStatus.ACCEPTED
        offer.answered_at = workflow.now()
        offer.decision_deadline = offer.answered_at + self._policy.decision_window
        offer.recorded = False
        await workflow.wait_condition(lambda: offer.recorded)
        return offer.view()

    @accept.validator
    def _validate_accept(self, action: AcceptOffer) -> None:
        offer = self._open_offer_or_refuse(action.expert)
        if offer.status != OfferStatus.PENDING:
            raise ValueError(f"{action.expert} has already accepted this application")

    @workflow.update
    async def decline(self, action: DeclineOffer) -> OfferView:
        """The expert refuses the task (不受理); counted as a strike, another expert is drawn."""
        offer = self._offer_of(action.expert)
        offer.status = OfferStatus.DECLINED
        offer.answered_at = workflow.now()
        offer.reason = action.reason or "declined"
        offer.recorded = False
        await workflow.wait_condition(lambda: offer.recorded)
        return offer.view()

    @decline.validator
    def _validate_decline(self, action: DeclineOffer) -> None:
        offer = self._open_offer_or_refuse(action.expert)
        if offer.status != OfferStatus.PENDING:
            raise ValueError(
                f"{action.expert} accepted this application already; decide it instead"
            )

    @workflow.update
    async def decide(self, action: Decide) -> DecisionView:
        """The accepted expert approves or rejects, with an opinion."""
        offer = self._offer_of(action.expert)
        offer.decision = action
        count = len(self._decisions)
        await workflow.wait_condition(lambda: len(self._decisions) > count)
        return self._decisions[-1]

    @decide.validator
    def _validate_decide(self, action: Decide) -> None:
        self._accepted_offer_or_refuse(action.expert)
        if not action.approve and not action.opinion.strip():
            raise ValueError("a rejection needs an opinion (--opinion): say why")

    @workflow.update
    async def request_materials(self, action: RequestMaterials) -> OfferView:
        """The accepted expert asks the applicant for supplementary materials."""
        offer = self._offer_of(action.expert)
        offer.materials_note = action.note
        offer.recorded = False
        await workflow.wait_condition(lambda: offer.recorded)
        return offer.view()

    @request_materials.validator
    def _validate_request_materials(self, action: RequestMaterials) -> None:
        self._accepted_offer_or_refuse(action.expert)

    @workflow.update
    async def resubmit(self, resubmission: Resubmission) -> int:
        """The clerk brings corrected or supplementary materials; returns the new round."""
        self._resubmission = resubmission
        round_before = self._round
        await workflow.wait_condition(lambda: self._round > round_before)
        return self._round

    @resubmit.validator
    def _validate_resubmit(self, resubmission: Resubmission) -> None:
        self._refuse_if_finished()
        if self._resubmission_deadline is None or self._resubmission is not None:
            raise ValueError(
                f"application {self._request.application_id} is {self._status}: it does not "
                "wait for materials now"
            )
        if workflow.now() >= self._resubmission_deadline:
            raise ValueError("the resubmission window has passed")

    # ---- validator helpers -------------------------------------------------------------------

    def _refuse_if_finished(self) -> None:
        if self._finished_at is not None or self._stage == ReviewStage.DONE:
            raise ValueError(
                f"application {self._request.application_id} is finished ({self._status}); "
                "nothing more can be done on it"
            )

    def _offer_of(self, expert: str) -> _Offer:
        offer = self._current
        if offer is None or offer.made.expert_code != expert:
            # Validators ran just before; only a bug reaches this line.
            raise ApplicationError(f"no open offer for {expert}", non_retryable=True)
        return offer

    def _open_offer_or_refuse(self, expert: str) -> _Offer:
        self._refuse_if_finished()
        offer = self._current
        if offer is not None and offer.made.expert_code == expert:
            if offer.status == OfferStatus.PENDING and workflow.now() >= offer.made.accept_deadline:
                raise ValueError(
                    f"the offer to {expert} lapsed at "
                    f"{_local(offer.made.accept_deadline, self._zone)}"
                )
            return offer
        earlier = [o for o in self._offers if o.made.expert_code == expert]
        if earlier:
            last = earlier[-1]
            raise ValueError(
                f"the offer to {expert} is closed ({last.status}"
                + (f": {last.reason}" if last.reason else "")
                + ")"
            )
        raise ValueError(f"application {self._request.application_id} is not offered to {expert}")

    def _accepted_offer_or_refuse(self, expert: str) -> _Offer:
        offer = self._open_offer_or_refuse(expert)
        if offer.status == OfferStatus.PENDING:
            raise ValueError(f"{expert} has not accepted this application yet: accept it first")
        if offer.status != OfferStatus.ACCEPTED or offer.decision is not None:
            raise ValueError(f"{expert} has already decided this application")
        if offer.materials_note is not None:
            raise ValueError("supplementary materials are requested; wait for the resubmission")
        return offer


async def _step(
    activity: str,
    arg: object,
    *,
    queue: str,
    summary: str,
    result_type: type[Any] | None = None,
) -> Any:
    """Run a database activity: short timeout, retried with backoff until the database is back."""
    return await workflow.execute_activity(
        activity,
        arg,
        task_queue=queue,
        result_type=result_type,
        start_to_close_timeout=_DB_ACTIVITY,
        retry_policy=_RETRY,
        summary=summary,
    )


def _remaining(deadline: datetime) -> timedelta:
    """Time left until ``deadline`` on the workflow clock (never negative)."""
    return max(deadline - workflow.now(), timedelta(0))


def _local(moment: datetime, zone: timezone) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _human(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
