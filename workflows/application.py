"""The application workflow: one 门诊慢特病 application from submission to result (seed 002).

Reads like the Sanmenxia process: intake (refuse / return / accept) → random assignment with
the accept window → initial review and re-review by different experts (one final review on the
instant track; a third expert when the two disagree) → SMS result → benefit certificate.

Expert and clerk actions arrive as Updates whose validators refuse a wrong expert, a lapsed
offer, a second decision or text that may not be stored, without writing history. Handlers
only change state; the process makes every database write, so there is one writer and one
order of events.

Every application ends closed, with a reason, and the applicant told: the process runs as a
task the run method watches, so an office close, a cancellation or a step that can no longer
succeed all end in the same closing steps (row closed, SMS). A bug in this code fails the
workflow task and is retried visibly (UI, ``temporal_workflow_task_execution_failed``, the log
names the application) until fixed, reset or closed by an operator.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
)

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models import text
    from models.benefit import BenefitRules, BenefitStart
    from models.domain import (
        HOSPITAL_CODE,
        ApplicationStatus,
        OfferStatus,
        ReviewDecision,
        ReviewStage,
    )
    from models.messages import (
        AcceptOffer,
        ApplicationInput,
        ApplicationState,
        AssignExpert,
        BenefitIssued,
        BenefitRequest,
        CloseApplication,
        Decide,
        DecisionView,
        DeclineOffer,
        DrawRequest,
        HospitalOpinion,
        HospitalRef,
        IntakeRequest,
        MaterialsRound,
        OfferAnswer,
        OfferMade,
        OfferView,
        OfficeAccept,
        OfficeConfirm,
        OfficeNoticeRequest,
        OfficeReturn,
        Progress,
        RequestMaterials,
        Resubmission,
        ReviewRecord,
        ScheduleExamination,
        SlaRequest,
        StatusChange,
        StrikeOutcome,
        WithdrawOffer,
    )
    from models.notifications import (
        SmsRequest,
        SmsTemplate,
        closed_sms,
        reason_param,
        task_path,
    )
    from models.policy import human_duration as _human
    from models.process import (
        ExpertReview,
        HospitalAssessment,
        InstantFiling,
        IntakeChecks,
        OfficeAcceptance,
        OfficeConfirmation,
        StepKind,
        Track,
    )
    from models.roles.assignment import AssignmentRole
    from models.roles.intake import IntakeRole
    from models.roles.review import BenefitRole, ReviewRole
    from workflows.patches import Generation
    from workflows.sms import AS_ACTIVITY, Deliveries
    from workflows.steps import ProcessStop, cause, run_step

BENEFIT_WORKFLOW_PATCH = "benefit-workflow"
"""Approvals from this release on start the benefit's own workflow (histories before it don't)."""
EXPERT_SMS_PATCH = "expert-offer-sms"
"""Offers from this release on are pushed to the expert by SMS, with one reminder before the
accept window closes (offers before it were only in the inbox)."""
DECISION_IN_ONE_STEP = "decision-completes-offer"
"""A decision is recorded and ends its offer in one step (before: record_review, then
answer_offer)."""
GENERATION = Generation(
    "application-2026-12",
    AS_ACTIVITY,
    BENEFIT_WORKFLOW_PATCH,
    EXPERT_SMS_PATCH,
    DECISION_IN_ONE_STEP,
)
"""The changes in force on every application started from this release: one marker in its
history instead of one per change."""

_UNSET = object()  # "never published", distinct from a published None (attribute unset)
_REVIEW_STAGES = (
    ReviewStage.INITIAL_REVIEW,
    ReviewStage.RE_REVIEW,
    ReviewStage.FINAL_REVIEW,
    ReviewStage.ARBITRATION,
)


class ApplicationClosed(Exception):
    """Raised inside the process when the application ends before a review result."""


class _ContinueAsNew(Exception):
    """Raised inside the process when a long wait should go on in a fresh run."""


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
    outcome: DecisionView | None = None  # the recorded decision, returned to its own handler
    materials_note: str | None = None
    withdrawn: str | None = None  # why the office took it back (disqualified elsewhere)
    recorded: bool = False  # the process has written the latest answer to the database
    reviews: int = 0  # review rows written for this offer (a materials request, a decision)

    def view(self) -> OfferView:
        return OfferView(
            offer_id=self.made.offer_id,
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
        self._track = self._choose_track(request)
        self._steps_done = 0  # steps of the track finished (carried over by continue-as-new)
        self._office_action: OfficeAccept | OfficeReturn | None = None
        self._assessment_hospital: str | None = None
        self._examination: ScheduleExamination | None = None
        self._opinion: HospitalOpinion | None = None
        self._confirmation: OfficeConfirm | None = None
        self._examinations = 0  # asked for by the hospital
        self._examinations_sent = 0  # recorded and the applicant told
        self._zone = timezone(timedelta(hours=request.policy.timezone_offset_hours))
        self._status = ApplicationStatus.SUBMITTED
        self._stage = ReviewStage.INTAKE
        self._status_seq = 0
        self._round = 1
        self._reasons: tuple[str, ...] = ()
        self._past_offers: tuple[OfferView, ...] = ()  # carried over from earlier runs
        self._offers: list[_Offer] = []
        self._current: _Offer | None = None
        self._decisions: list[DecisionView] = []
        self._hospitals: dict[str, HospitalRef] = {}
        self._resubmission: Resubmission | None = None
        self._resubmission_deadline: datetime | None = None
        self._resubmissions = 0  # resubmissions received; each handler waits for its outcome
        self._resubmission_outcomes: dict[int, int | str] = {}
        self._waiting_for = "intake checks"
        self._sla_due_at: datetime | None = None
        self._sla_breached = False
        self._sla_provisional = False
        self._benefit: BenefitIssued | None = None
        self._finished_at: datetime | None = None
        self._returned = False  # intake sent it back at least once (the Returned filter)
        self._closing: CloseApplication | None = None
        self._stop = ProcessStop()  # a close or cancel: each wait of the process ends on it
        self._pool_exhausted_since: datetime | None = None
        self._pool_changed = False
        self._assignment: AssignExpert | None = None
        self._assignment_outcome: OfferView | str | None = None
        self._notices = 0
        self._deliveries = Deliveries(GENERATION)
        self._published: dict[SearchAttributeKey[Any], Any] = {}
        if request.resume is not None:
            self._restore(request.resume)

    # ---- the process ---------------------------------------------------------------------

    @workflow.run
    async def run(self, request: ApplicationInput) -> Progress:
        process = asyncio.create_task(self._process(request))
        try:
            await workflow.wait_condition(lambda: process.done() or self._closing is not None)
        except asyncio.CancelledError:
            # Cancelled from the UI or CLI: stop the process, close and tell, end cancelled.
            if await self._stop.stop(process):
                await self._close_at_the_end("cancelled by an operator", actor="operator")
            await self._deliveries.done()  # the person is told before the run ends
            raise
        if not process.done():  # the office closes it (chronic admin close)
            assert self._closing is not None
            if await self._stop.stop(process):
                await self._close_at_the_end(
                    f"closed by the office: {self._closing.reason}", actor=self._closing.actor
                )
                return await self._finish()
            # Decided in the very task the close came in with: the decision stands, and the
            # close answers with it.
        try:
            process.result()
        except ApplicationClosed:
            pass
        except _ContinueAsNew:
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._deliveries.done()
            workflow.continue_as_new(request.model_copy(update={"resume": self._state()}))
        except (ActivityError, ChildWorkflowError, ApplicationError) as error:
            # A step failed for good (a missing record, a refused write): the application
            # cannot go on. Close it, tell the applicant, and fail visibly with the cause.
            workflow.logger.error("application process failed: %s", cause(error))
            await self._close_at_the_end("processing failed; the office has been alerted")
            await self._deliveries.done()  # told before the run fails
            raise ApplicationError(
                f"application process failed: {cause(error)}", non_retryable=True
            ) from error
        return await self._finish()

    async def _finish(self) -> Progress:
        self._finished_at = workflow.now()
        self._publish()
        # Let handlers still answering their callers finish before the run ends.
        await workflow.wait_condition(workflow.all_handlers_finished)
        # The application has ended when the person has been told (or the send has failed
        # for good, which its failed outbox row shows).
        await self._deliveries.done()
        return self.progress()

    async def _process(self, request: ApplicationInput) -> None:
        if request.resume is None:
            sla = await run_step(
                IntakeRole.sla_due_at,
                SlaRequest(
                    start=request.submitted_at.astimezone(self._zone),
                    working_days=self._policy.sla_working_days_max,
                    application_id=request.application_id,
                ),
                queue=IntakeRole.QUEUE,
                summary=f"SLA: {self._policy.sla_working_days_max} working days",
            )
            self._sla_due_at, self._sla_provisional = sla.due_at, sla.provisional
        sla_watch = asyncio.create_task(self._watch_sla())
        try:
            if request.resume is None:
                await self._set_status(ApplicationStatus.INTAKE, ReviewStage.INTAKE, step="intake")
                await self._sms(SmsTemplate.SUBMITTED, "submitted")
            decision = await self._run_track()
            await self._result(decision)
        finally:
            sla_watch.cancel()

    def _choose_track(self, request: ApplicationInput) -> Track:
        if request.track is None:  # submitted before tracks existed: Sanmenxia's by disease
            return self._policy.track_for(self._disease, diagnosed_at_grade_3a=False)
        track = next((t for t in self._policy.tracks if t.name == request.track), None)
        if track is None:
            raise ApplicationError(
                f"track {request.track} is not in the {self._policy.region} policy"
            )
        return track

    async def _run_track(self) -> DecisionView:
        """The region's process as its policy lists it: the track's steps, in order."""
        decision: DecisionView | None = None
        for index, step in enumerate(self._track.steps):
            if index < self._steps_done:  # finished in an earlier run (continue-as-new)
                continue
            match step:
                case IntakeChecks():
                    await self._intake(step)
                case OfficeAcceptance():
                    await self._office_acceptance(step)
                case ExpertReview():
                    decision = await self._review(step)
                case HospitalAssessment():
                    decision = await self._hospital_assessment(step)
                case OfficeConfirmation():
                    assert decision is not None, "office confirmation follows a decision"
                    decision = await self._office_confirmation(step, decision)
                case InstantFiling():
                    pass  # the assessment's decision takes effect at once (_result)
            self._steps_done = index + 1
        if decision is None:  # a track validator guarantees a deciding step
            raise ApplicationError(f"track {self._track.name} ended without a decision")
        return decision

    async def _intake(self, step: IntakeChecks) -> None:
        """Seed 002 step 1–2: insurance, catalogue, quota, materials; refuse, return or accept."""
        while True:
            self._waiting_for = f"intake checks of materials round {self._round}"
            self._publish()
            outcome = await run_step(
                IntakeRole.check_intake,
                IntakeRequest(
                    application_id=self._request.application_id,
                    round=self._round,
                    policy=self._policy,
                    checked_at=workflow.now(),
                    requires_long_term_filing=step.requires_long_term_filing,
                ),
                queue=IntakeRole.QUEUE,
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
                await self._sms(SmsTemplate.REJECTED, "refused", reason=reason_param(reason))
                raise ApplicationClosed
            self._returned = True
            await self._open_resubmission_window()
            await self._set_status(
                ApplicationStatus.RETURNED,
                ReviewStage.INTAKE,
                step=f"returned:{self._round}",
                reason=reason,
            )
            await self._sms(
                SmsTemplate.RETURNED, f"returned:{self._round}", reasons=reason_param(reason)
            )
            if not await self._await_resubmission():
                await self._close(
                    "returned and not resubmitted within "
                    f"{_human(self._policy.resubmission_window)}"
                )
            await self._set_status(
                ApplicationStatus.INTAKE, ReviewStage.INTAKE, step=f"resubmitted:{self._round}"
            )

    async def _review(self, step: ExpertReview) -> DecisionView:
        """Seed 002 step 6: the step's stages (one final review on the instant track, else
        initial review then re-review), each by a different expert.

        When the first two stages disagree, a further stage (arbitration) decides: two experts
        who agree settle it, so the result never rests on one dissent. A stage decided in an
        earlier run (before a continue-as-new) is not reviewed again.
        """
        decisions = [await self._stage_review(stage) for stage in step.stages]
        if (
            step.on_disagreement is not None
            and len(decisions) >= 2
            and decisions[0].decision != decisions[1].decision
        ):
            return await self._stage_review(step.on_disagreement)
        return decisions[-1]

    async def _stage_review(self, stage: ReviewStage) -> DecisionView:
        """Seed 002 step 4: random offers until an expert accepts and decides."""
        earlier = next((d for d in self._decisions if d.stage == stage), None)
        if earlier is not None:  # decided in an earlier run, before a continue-as-new
            return earlier
        if (self._status, self._stage) != (ApplicationStatus.IN_REVIEW, stage):
            await self._set_status(ApplicationStatus.IN_REVIEW, stage, step=f"stage:{stage}")
        while True:
            offer = await self._draw(stage)
            decision = await self._offer_lifecycle(offer)
            if decision is not None:
                self._decisions.append(decision)
                return decision

    async def _draw(self, stage: ReviewStage) -> _Offer:
        """Offer the stage to a drawn (or office-assigned) expert; wait while nobody is eligible.

        Exhaustion rule (in the draw activity): once every eligible expert has been offered
        this application, those who only let an offer lapse become eligible again. When even
        they are gone the office is alerted (a notice, ``PoolExhausted``, a status line); the
        case draws again when an expert is added or reinstated (signal ``pool_changed``),
        when the office assigns one by hand, and on a slow timer as a safety net.
        """
        reviewers = tuple(d.expert for d in self._decisions)
        wait = self._policy.no_expert_retry_interval
        while True:
            assignment, self._assignment = self._assignment, None
            drawn = await run_step(
                AssignmentRole.draw_expert,
                DrawRequest(
                    application_id=self._request.application_id,
                    seq=self._next_seq(),
                    stage=stage,
                    category=self._disease.category,
                    exclude_experts=reviewers,
                    accept_window=self._policy.accept_window,
                    expert=assignment.expert if assignment else None,
                    actor=assignment.actor if assignment else "system",
                ),
                queue=AssignmentRole.QUEUE,
                summary=f"assign {assignment.expert} by hand for {stage}"
                if assignment
                else f"random draw for {stage} ({self._disease.category})",
            )
            if drawn.offer is not None:
                offer = _Offer(made=drawn.offer, stage=stage)
                self._offers.append(offer)
                self._current = offer
                if assignment is not None:
                    self._assignment_outcome = offer.view()
                await self._pool_refilled()
                return offer
            if assignment is not None:
                self._assignment_outcome = drawn.problem or "the expert cannot be assigned"
                continue
            await self._pool_exhausted(stage)
            if workflow.info().get_current_history_length() > self._policy.history_event_limit:
                raise _ContinueAsNew
            retry_at = workflow.now() + wait
            self._waiting_for = (
                f"no eligible {self._disease.category} expert for {stage}: the office is "
                f"alerted; drawing again when an expert is added or reinstated, when the office "
                f"assigns one (chronic admin assign), or at {_local(retry_at, self._zone)}"
            )
            self._publish()
            self._pool_changed = False
            await self._until(
                lambda: self._pool_changed or self._assignment is not None,
                retry_at,
                summary=f"pool exhausted; draw again in {_human(wait)} or when it changes",
            )
            wait = min(wait * 2, self._policy.no_expert_retry_max)

    async def _pool_exhausted(self, stage: ReviewStage) -> None:
        if self._pool_exhausted_since is not None:
            return
        self._pool_exhausted_since = workflow.now()
        self._notices += 1
        await self._notice(
            "pool_exhausted",
            f"no eligible {self._disease.category} expert left for {stage} of "
            f"{self._request.application_id}: add or reinstate an expert, or assign one by "
            f"hand (chronic admin assign {self._request.application_id} --expert CODE)",
        )
        self._publish()

    async def _pool_refilled(self) -> None:
        if self._pool_exhausted_since is None:
            return
        self._pool_exhausted_since = None
        await self._notice("pool_exhausted", "", resolved=True)
        self._publish()

    async def _notice(self, kind: str, message: str, *, resolved: bool = False) -> None:
        await run_step(
            ReviewRole.office_notice,
            OfficeNoticeRequest(
                step_key=f"{self._request.application_id}:{kind}:{self._notices}",
                application_id=self._request.application_id,
                kind=kind,
                message=message,
                at=workflow.now(),
                resolved=resolved,
            ),
            queue=ReviewRole.QUEUE,
            summary=f"office notice: {kind}{' resolved' if resolved else ''}",
        )

    def _next_seq(self) -> int:
        return len(self._past_offers) + len(self._offers) + 1

    async def _offer_lifecycle(self, offer: _Offer) -> DecisionView | None:
        """Seed 002 steps 4–5: accept window, decision deadline, strikes. None = draw again."""
        expert = offer.made.expert_code
        self._waiting_for = (
            f"{expert} to accept or decline by {_local(offer.made.accept_deadline, self._zone)}"
        )
        self._publish()
        answered = await self._accept_window(offer)
        if offer.status == OfferStatus.PENDING and offer.withdrawn is not None:
            await self._withdraw(offer)
            return None
        if not answered:
            offer.status = OfferStatus.LAPSED
            offer.reason = f"no answer within {_human(self._policy.accept_window)}"
        if offer.status != OfferStatus.ACCEPTED:
            await self._strike(offer, deadline=offer.made.accept_deadline)
            return None
        await self._answer(offer)
        while True:
            assert offer.decision_deadline is not None
            self._waiting_for = (
                f"{expert} to decide by {_local(offer.decision_deadline, self._zone)}"
            )
            self._publish()
            # A decision the validator accepted before the deadline is recorded even when
            # the deadline fires in the same activation.
            await self._until(
                lambda: (
                    offer.decision is not None
                    or offer.materials_note is not None
                    or offer.withdrawn is not None
                ),
                offer.decision_deadline,
                summary=f"decision deadline for expert {expert}, "
                f"{_human(self._policy.decision_window)}",
            )
            if offer.decision is not None:
                return await self._record_decision(offer, offer.decision)
            if offer.materials_note is not None:
                await self._materials_requested(offer)
                continue
            if offer.withdrawn is not None:
                await self._withdraw(offer)
                return None
            offer.status = OfferStatus.DECISION_LAPSED
            offer.reason = f"no decision within {_human(self._policy.decision_window)}"
            await self._strike(offer, deadline=offer.decision_deadline)
            return None

    async def _accept_window(self, offer: _Offer) -> bool:
        """Seed 002 step 4: the expert has ``accept_window`` to accept or decline; True when
        they answered (or the office took the offer back) in time.

        Push, not only pull: the expert gets an SMS with a link to the task in the hall
        (never the applicant's data), and while the offer is still open one reminder
        ``accept_reminder_before`` the window closes. An answer, a withdrawal or the lapse
        before that moment means no reminder.
        """
        expert, deadline = offer.made.expert_code, offer.made.accept_deadline

        def settled() -> bool:
            return offer.status != OfferStatus.PENDING or offer.withdrawn is not None

        window = f"accept window for expert {expert}, {_human(self._policy.accept_window)}"
        if not GENERATION.applies(EXPERT_SMS_PATCH):
            return await self._until(settled, deadline, summary=window)
        await self._offer_sms(SmsTemplate.EXPERT_OFFER, offer)
        lead = self._policy.accept_reminder_before
        reminder_at = deadline - lead
        if lead > timedelta(0) and reminder_at > workflow.now():
            if await self._until(
                settled, reminder_at, summary=f"remind expert {expert} {_human(lead)} before"
            ):
                return True
            await self._offer_sms(SmsTemplate.EXPERT_OFFER_REMINDER, offer, "reminder")
        return await self._until(settled, deadline, summary=window)

    async def _offer_sms(self, template: SmsTemplate, offer: _Offer, step: str = "") -> None:
        """An SMS to the offer's expert: the deadline and the link to the task, nothing else
        (one per offer and template: the key names the application and the offer)."""
        key = f"{self._request.application_id}:offer:{offer.made.seq}"
        await self._send(
            SmsRequest(
                dedup_key=f"{key}:{step}" if step else key,
                template=template,
                expert_code=offer.made.expert_code,
                params={
                    "deadline": _local(offer.made.accept_deadline, self._zone),
                    "link": task_path(self._request.application_id),
                },
            )
        )

    async def _withdraw(self, offer: _Offer) -> None:
        """Take the offer back without a strike; the reason stays in the history and records."""
        offer.status = OfferStatus.WITHDRAWN
        offer.reason = offer.withdrawn
        self._current = None
        await self._answer(offer)

    async def _materials_requested(self, offer: _Offer) -> None:
        """The reviewer asked for more; the resubmission goes back to the same reviewer."""
        note = offer.materials_note or ""
        await self._review_record(offer, ReviewDecision.REQUEST_MATERIALS, note)
        offer.recorded = True
        await self._open_resubmission_window()
        await self._set_status(
            ApplicationStatus.MATERIALS_REQUESTED,
            offer.stage,
            step=f"materials_requested:{offer.made.seq}:{self._round}",
            reason=note,
        )
        await self._sms(
            SmsTemplate.MATERIALS_REQUESTED,
            f"materials:{offer.made.seq}:{self._round}",
            note=reason_param(note),
        )
        if not await self._await_resubmission():
            await self._close(
                "supplementary materials not provided within "
                f"{_human(self._policy.resubmission_window)}"
            )
        offer.materials_note = None
        offer.decision_deadline = workflow.now() + self._policy.decision_window
        await self._set_status(
            ApplicationStatus.IN_REVIEW, offer.stage, step=f"resubmitted:{self._round}"
        )

    async def _open_resubmission_window(self) -> None:
        """From now on the clerk may resubmit (opened before the SMS goes out).

        The hospital register is read now, so the update's validator can hold resubmitted
        materials to intake's rules (known hospital, level, public, age) at the door.
        """
        await self._load_register("hospital register for the resubmission check")
        self._resubmission = None
        self._resubmission_deadline = workflow.now() + self._policy.resubmission_window

    async def _await_resubmission(self) -> bool:
        """Wait for corrected materials within the open window; True when they came."""
        deadline = self._resubmission_deadline
        assert deadline is not None
        self._waiting_for = f"the applicant to resubmit materials by {_local(deadline, self._zone)}"
        self._publish()
        try:
            while True:
                # A resubmission the validator accepted before the deadline is taken even
                # when the window closes in the same activation.
                if not await self._until(
                    lambda: self._resubmission is not None,
                    deadline,
                    summary=f"resubmission window, {_human(self._policy.resubmission_window)}",
                ):
                    return False
                resubmission = self._resubmission
                assert resubmission is not None
                token = self._resubmissions
                recorded = await run_step(
                    IntakeRole.record_materials,
                    MaterialsRound(
                        application_id=self._request.application_id,
                        round=self._round + 1,
                        materials=resubmission.materials,
                    ),
                    queue=IntakeRole.QUEUE,
                    summary=f"record materials round {self._round + 1}",
                )
                self._resubmission = None
                if recorded.problems:  # the register changed since the window opened
                    self._resubmission_outcomes[token] = "; ".join(recorded.problems)
                    continue
                self._round += 1
                self._resubmission_outcomes[token] = self._round
                return True
        finally:
            self._resubmission_deadline = None

    # ---- office and hospital steps (Wuhan, Jilin) ------------------------------------------

    async def _office_acceptance(self, step: OfficeAcceptance) -> None:
        """A clerk checks insurance and that the disease matches the diagnosis, then accepts
        and designates who assesses, or returns with reasons (the applicant may resubmit)."""
        await self._load_register()  # before the stage opens: the validator reads it
        await self._set_status(
            ApplicationStatus.IN_REVIEW, ReviewStage.OFFICE_ACCEPTANCE, step="office_acceptance"
        )
        # An action is taken by its handler at any time once the stage is open, even while a
        # status write is still in flight: it is never reset here, only once it is handled.
        while True:
            await self._office_wait(
                lambda: self._office_action is not None, step.window, "accept or return"
            )
            action = self._office_action
            if isinstance(action, OfficeAccept):
                hospital = action.hospital or self._request.diagnosing_hospital
                assert hospital is not None  # the validator names one
                self._assessment_hospital = hospital
                await self._set_status(
                    ApplicationStatus.IN_REVIEW,
                    ReviewStage.HOSPITAL_ASSESSMENT,
                    step="office_accepted",
                    actor=action.clerk,
                    detail={"assessment_hospital": hospital},
                )
                return
            assert isinstance(action, OfficeReturn)
            self._returned = True
            self._reasons = (action.reasons,)
            await self._open_resubmission_window()
            await self._set_status(
                ApplicationStatus.RETURNED,
                ReviewStage.OFFICE_ACCEPTANCE,
                step=f"office_returned:{self._round}",
                reason=action.reasons,
                actor=action.clerk,
            )
            await self._sms(
                SmsTemplate.RETURNED,
                f"returned:{self._round}",
                reasons=reason_param(action.reasons),
            )
            if not await self._await_resubmission():
                await self._close(
                    "returned by the office and not resubmitted within "
                    f"{_human(self._policy.resubmission_window)}"
                )
            self._office_action = None  # the office may act again on the new round
            await self._set_status(
                ApplicationStatus.IN_REVIEW,
                ReviewStage.OFFICE_ACCEPTANCE,
                step=f"resubmitted:{self._round}",
            )

    async def _hospital_assessment(self, step: HospitalAssessment) -> DecisionView:
        """The designated hospital decides from the records, or first examines the applicant
        on site (date and place by SMS); its opinion is the decision the office confirms."""
        if step.assessors == "designated":
            hospital = self._assessment_hospital or self._request.diagnosing_hospital
            if hospital is None:
                raise ApplicationError("no hospital was designated to assess this application")
            self._assessment_hospital = hospital
        if self._stage != ReviewStage.HOSPITAL_ASSESSMENT:
            await self._set_status(
                ApplicationStatus.IN_REVIEW, ReviewStage.HOSPITAL_ASSESSMENT, step="assessment"
            )
        while True:
            told = self._examinations_sent
            await self._office_wait(
                lambda told=told: self._opinion is not None or self._examinations > told,
                step.window,
                f"the opinion of {self._assessment_hospital or _ASSESSORS[step.assessors]}",
            )
            hospital = self._assessment_hospital
            assert hospital is not None  # the first hospital that acted holds it
            if self._opinion is not None:
                break
            assert self._examination is not None
            scheduled = self._examinations
            exam = self._examination
            await self._set_status(
                ApplicationStatus.IN_REVIEW,
                ReviewStage.HOSPITAL_ASSESSMENT,
                step=f"examination:{scheduled}",
                actor=f"hospital:{hospital}",
                detail={"examination_at": exam.at.isoformat(), "place": exam.place},
            )
            await self._sms(
                SmsTemplate.EXAMINATION_SCHEDULED,
                f"examination:{scheduled}",
                at=_local(exam.at, self._zone),
                place=reason_param(exam.place),
            )
            self._examinations_sent = scheduled
        opinion = self._opinion
        decision = DecisionView(
            stage=ReviewStage.HOSPITAL_ASSESSMENT,
            expert=f"hospital:{hospital}",
            decision=ReviewDecision.APPROVE if opinion.approve else ReviewDecision.REJECT,
            opinion=opinion.opinion,
            at=workflow.now(),
        )
        self._decisions.append(decision)
        await self._set_status(
            ApplicationStatus.IN_REVIEW,
            ReviewStage.OFFICE_CONFIRMATION
            if self._track.step(StepKind.OFFICE_CONFIRMATION)
            else ReviewStage.HOSPITAL_ASSESSMENT,
            step="assessed",
            actor=f"hospital:{hospital}",
            reason=opinion.opinion or None,
            detail={"opinion": decision.decision.value},
        )
        return decision

    async def _office_confirmation(
        self, step: OfficeConfirmation, assessed: DecisionView
    ) -> DecisionView:
        """The office confirms the hospital's opinion or refuses with the reason."""
        await self._office_wait(
            lambda: self._confirmation is not None, step.window, "confirm or refuse"
        )
        action = self._confirmation
        assert action is not None
        if action.confirm:
            decision = assessed.model_copy(
                update={"stage": ReviewStage.OFFICE_CONFIRMATION, "expert": action.clerk}
            )
        else:
            decision = DecisionView(
                stage=ReviewStage.OFFICE_CONFIRMATION,
                expert=action.clerk,
                decision=ReviewDecision.REJECT,
                opinion=action.reason,
                at=workflow.now(),
            )
        self._decisions.append(decision)
        return decision

    async def _office_wait(self, condition: Any, window: timedelta, what: str) -> None:
        """Wait for a person of the office or a hospital; past the office's window, a notice
        to the desk (once) and the SLA tell that it is late — it is never decided for them."""
        deadline = workflow.now() + window
        self._waiting_for = f"{what} by {_local(deadline, self._zone)}"
        self._publish()
        if await self._until(condition, deadline, summary=f"{what}, {_human(window)}"):
            return
        self._notices += 1
        due = _local(deadline, self._zone)
        await self._notice("overdue", f"{self._request.application_id}: {what} was due {due}")
        await workflow.wait_condition(lambda: self._stop.requested or condition())
        self._stop.check()

    async def _load_register(self, summary: str = "hospital register") -> None:
        """The region's hospitals, for validators that check a hospital code at the door."""
        register = await run_step(
            IntakeRole.hospital_register,
            self._policy.region,
            queue=IntakeRole.QUEUE,
            summary=summary,
        )
        self._hospitals = {h.code: h for h in register}

    async def _result(self, decision: DecisionView) -> None:
        """Seed 002 steps 7–8: SMS result; an approval starts the benefit on its date."""
        if decision.decision == ReviewDecision.APPROVE:
            approved_on = workflow.now().astimezone(self._zone).date()
            validity = self._policy.benefit_validity
            self._benefit = await run_step(
                ReviewRole.issue_benefit,
                BenefitRequest(
                    application_id=self._request.application_id,
                    approved_on=approved_on,
                    validity_days=None if validity is None else validity.days,
                ),
                queue=ReviewRole.QUEUE,
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
            if GENERATION.applies(BENEFIT_WORKFLOW_PATCH):
                await self._start_benefit()
        else:
            await self._set_status(
                ApplicationStatus.REJECTED,
                ReviewStage.DONE,
                step="rejected",
                reason=decision.opinion,
                closed=True,
            )
            await self._sms(SmsTemplate.REJECTED, "rejected", reason=reason_param(decision.opinion))

    async def _start_benefit(self) -> None:
        """The benefit lives on in its own workflow (``benefit-<application id>``): validity,
        reminder and end, hospital changes, hospital stays. Started by an activity with an
        idempotent workflow ID, so it neither waits for nor depends on this run.

        The approval stands whatever happens here: a start that fails for good (retries cover
        an unreachable Temporal or database) puts a notice on the office's desk instead of
        failing the application.
        """
        try:
            await run_step(
                BenefitRole.start_benefit,
                BenefitStart(
                    application_id=self._request.application_id,
                    rules=BenefitRules.of(self._policy),
                    applicant_key=self._request.applicant_key,
                    search_attributes=self._request.search_attributes,
                ),
                queue=BenefitRole.QUEUE,
                summary="start the benefit's workflow",
            )
        except ActivityError as error:
            workflow.logger.error("the benefit's workflow was not started: %s", cause(error))
            self._notices += 1
            await self._notice(
                "benefit_not_started",
                f"the benefit of {self._request.application_id} is issued but its process did "
                f"not start ({cause(error)}): the certificate is recorded; start its process "
                "once the cause is fixed",
            )

    async def _close(self, reason: str, *, actor: str = "system") -> NoReturn:
        """End the application from inside the process (a window passed without materials)."""
        await self._record_close(reason, actor=actor)
        raise ApplicationClosed

    async def _close_at_the_end(self, reason: str, *, actor: str = "system") -> None:
        """Close from the run method (office close, cancellation, failure), unless the
        process got as far as its own end."""
        if self._stage == ReviewStage.DONE:
            return
        try:
            await self._record_close(reason, actor=actor)
        except ActivityError as error:  # the records cannot be written: say so, loudly
            workflow.logger.error("could not close the application: %s", cause(error))

    async def _record_close(self, reason: str, *, actor: str) -> None:
        """Row closed with the reason, an open offer withdrawn (it leaves the expert's list
        and the pool's counts), the applicant told."""
        offer, self._current = self._current, None
        if offer is not None and offer.status in (OfferStatus.PENDING, OfferStatus.ACCEPTED):
            offer.status, offer.reason = OfferStatus.WITHDRAWN, f"application closed: {reason}"
            await self._answer(offer)
        await self._set_status(
            ApplicationStatus.CLOSED,
            ReviewStage.DONE,
            step="closed",
            reason=reason,
            closed=True,
            actor=actor,
        )
        await self._send(closed_sms(self._request.application_id, reason))

    # ---- steps that write -----------------------------------------------------------------

    async def _answer(self, offer: _Offer, *, deadline: datetime | None = None) -> StrikeOutcome:
        outcome: StrikeOutcome = await run_step(
            AssignmentRole.answer_offer,
            OfferAnswer(
                offer_id=offer.made.offer_id,
                status=offer.status,
                at=offer.answered_at or workflow.now(),
                reason=offer.reason,
                decision_deadline=offer.decision_deadline,
                strikes_to_disqualify=self._policy.strikes_to_disqualify,
                deadline=deadline,
                outage_grace=self._policy.outage_grace,
            ),
            queue=AssignmentRole.QUEUE,
            summary=f"offer {offer.made.seq} {offer.status} by {offer.made.expert_code}",
        )
        if outcome.status is not None and outcome.status != offer.status:
            offer.status, offer.reason = outcome.status, outcome.reason  # our outage: no strike
        offer.recorded = True
        return outcome

    async def _strike(self, offer: _Offer, *, deadline: datetime | None = None) -> None:
        """Seed 002 step 5: a decline or lapse is a strike; the limit disqualifies at once."""
        self._current = None
        outcome = await self._answer(offer, deadline=deadline)
        if not outcome.disqualified or outcome.disqualified_at is None:
            return
        # Any application that sees the disqualification may send the hospital's notice: the
        # key names the disqualification, not the application, so it goes out exactly once.
        stamp = outcome.disqualified_at.strftime("%Y%m%dT%H%M%S")
        await self._sms(
            SmsTemplate.EXPERT_DISQUALIFIED,
            key=f"expert:{outcome.expert_code}:disqualified:{stamp}",
            hospital_code=outcome.hospital_code,
            expert_code=outcome.expert_code,
            strikes=str(self._policy.strikes_to_disqualify),
        )
        reason = (
            f"expert {outcome.expert_code} disqualified ({outcome.consecutive_strikes} strikes)"
        )
        for application_id in outcome.open_offers_elsewhere:
            if application_id == self._request.application_id:
                continue
            try:
                await workflow.get_external_workflow_handle(application_id).signal(
                    "withdraw_offer", WithdrawOffer(expert=outcome.expert_code, reason=reason)
                )
            except FailureError as error:  # that case has ended meanwhile
                workflow.logger.info("offer of %s not withdrawn: %s", application_id, error)

    async def _record_decision(self, offer: _Offer, decide: Decide) -> DecisionView:
        decision = ReviewDecision.APPROVE if decide.approve else ReviewDecision.REJECT
        now = workflow.now()
        if GENERATION.applies(DECISION_IN_ONE_STEP):
            after = await self._review_record(offer, decision, decide.opinion, completes=True)
            offer.status = after or OfferStatus.COMPLETED
            offer.recorded = True
        else:
            await self._review_record(offer, decision, decide.opinion)
            offer.status = OfferStatus.COMPLETED
            await self._answer(offer)
        self._current = None
        offer.outcome = DecisionView(
            stage=offer.stage,
            expert=offer.made.expert_code,
            decision=decision,
            opinion=decide.opinion,
            at=now,
        )
        return offer.outcome

    async def _review_record(
        self, offer: _Offer, decision: ReviewDecision, opinion: str, *, completes: bool = False
    ) -> OfferStatus | None:
        offer.reviews += 1
        return await run_step(
            ReviewRole.record_review,
            ReviewRecord(
                application_id=self._request.application_id,
                offer_id=offer.made.offer_id,
                seq=offer.reviews,
                stage=offer.stage,
                expert_code=offer.made.expert_code,
                decision=decision,
                opinion=opinion,
                decided_at=workflow.now(),
                completes_offer=completes,
            ),
            queue=ReviewRole.QUEUE,
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
        actor: str = "system",
        detail: dict[str, str] | None = None,
    ) -> None:
        self._status, self._stage = status, stage
        self._status_seq += 1
        self._publish()
        await run_step(
            ReviewRole.change_status,
            StatusChange(
                application_id=self._request.application_id,
                status=status,
                stage=stage,
                at=workflow.now(),
                step=step,
                seq=self._status_seq,
                actor=actor,
                reason=reason,
                closed=closed,
                detail=detail or {},
            ),
            queue=ReviewRole.QUEUE,
            summary=f"status {status}, stage {stage}",
        )

    async def _sms(
        self,
        template: SmsTemplate,
        step: str = "",
        *,
        key: str | None = None,
        hospital_code: str | None = None,
        **params: str,
    ) -> None:
        """Send an SMS beside the process: exactly once per key, retried until sent."""
        for name, value in params.items():
            if text.problem(value, field=name) is not None:
                # Texts passed the same rule at the door; reaching this is a bug. Send the
                # message without that detail rather than not at all, and say so in the log.
                workflow.logger.error("SMS %s: param %s refused; sent without it", template, name)
                params[name] = "详见办理进度"
        await self._send(
            SmsRequest(
                dedup_key=key or f"{self._request.application_id}:{step}",
                template=template,
                application_id=None if hospital_code else self._request.application_id,
                hospital_code=hospital_code,
                params=params,
            )
        )

    async def _send(self, request: SmsRequest) -> None:
        """Hand ``request`` to a delivery that retries until sent, so a dead notification
        worker or provider never holds an application up. The run waits for its deliveries
        only when everything else is done."""
        await self._deliveries.send(request)

    async def _watch_sla(self) -> None:
        """Flag the application when the 5–8 working-day target (the upper bound) passes."""
        if self._sla_due_at is None or self._sla_breached:
            return
        try:
            await workflow.wait_condition(
                lambda: self._finished_at is not None,
                timeout=_remaining(self._sla_due_at),
                timeout_summary=f"SLA target, {self._policy.sla_working_days_max} working days",
            )
        except TimeoutError:
            self._sla_breached = True
            self._publish()

    async def _until(self, condition: Any, deadline: datetime, *, summary: str) -> bool:
        """Wait for ``condition`` until ``deadline``; True when it holds.

        When the deadline fires in the activation that also brought an accepted update, the
        handler's change is applied first and counts: the condition is checked once more.
        """
        try:
            await workflow.wait_condition(
                lambda: self._stop.requested or condition(),
                timeout=_remaining(deadline),
                timeout_summary=summary,
            )
        except TimeoutError:
            await asyncio.sleep(0)  # let handlers started in this activation run
        self._stop.check()
        return bool(condition())

    # ---- continue-as-new -------------------------------------------------------------------

    def _state(self) -> ApplicationState:
        return ApplicationState(
            status=self._status,
            stage=self._stage,
            round=self._round,
            status_seq=self._status_seq,
            returned=self._returned,
            sla_due_at=self._sla_due_at,
            sla_breached=self._sla_breached,
            sla_provisional=self._sla_provisional,
            offers=self._offer_views(),
            decisions=tuple(self._decisions),
            pool_exhausted_since=self._pool_exhausted_since,
            notices=self._notices,
            steps_done=self._steps_done,
        )

    def _restore(self, state: ApplicationState) -> None:
        self._status, self._stage = state.status, state.stage
        self._round = state.round
        self._status_seq = state.status_seq
        self._returned = state.returned
        self._sla_due_at = state.sla_due_at
        self._sla_breached = state.sla_breached
        self._sla_provisional = state.sla_provisional
        self._past_offers = state.offers
        self._decisions = list(state.decisions)
        self._pool_exhausted_since = state.pool_exhausted_since
        self._notices = state.notices
        self._steps_done = 1 if state.steps_done is None else state.steps_done
        self._waiting_for = "an eligible expert (continued in a fresh run)"

    def _offer_views(self) -> tuple[OfferView, ...]:
        return self._past_offers + tuple(o.view() for o in self._offers)

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
            sa.POOL_EXHAUSTED: self._pool_exhausted_since is not None,
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
        lines += [f"**Alert:** {alert}" for alert in self._alerts()]
        if self._sla_due_at is not None:
            flag = " (**breached**)" if self._sla_breached else ""
            lines.append(f"SLA due {_local(self._sla_due_at, self._zone)}{flag}")
        offers = self._offer_views()
        if offers:
            lines += ["", "| # | stage | expert | pool | status |", "|---|---|---|---|---|"]
            lines += [
                f"| {o.seq} | {o.stage} | {o.expert} | {o.pool_size} | {o.status} |" for o in offers
            ]
        for d in self._decisions:
            lines.append(f"- {d.stage}: **{d.decision}** by {d.expert}")
        return "\n".join(lines)

    def _alerts(self) -> tuple[str, ...]:
        alerts: list[str] = []
        if self._pool_exhausted_since is not None and self._finished_at is None:
            alerts.append(
                f"expert pool exhausted since {_local(self._pool_exhausted_since, self._zone)}: "
                "add or reinstate an expert, or `chronic admin assign "
                f"{self._request.application_id} --expert CODE`"
            )
        if self._sla_provisional:
            alerts.append(
                "SLA target is provisional: the official holidays of its year are not published yet"
            )
        return tuple(alerts)

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
            offers=self._offer_views(),
            decisions=tuple(self._decisions),
            reasons=self._reasons,
            resubmission_deadline=self._resubmission_deadline,
            materials_round=self._round,
            benefit=self._benefit,
            finished_at=self._finished_at,
            sla_provisional=self._sla_provisional,
            pool_exhausted_since=self._pool_exhausted_since,
            alerts=self._alerts(),
            track=self._track.name,
            assessment_hospital=self._assessment_hospital,
            examination=self._examination,
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
        await self._settled(lambda: offer.recorded)
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
        await self._settled(lambda: offer.recorded)
        return offer.view()

    @decline.validator
    def _validate_decline(self, action: DeclineOffer) -> None:
        offer = self._open_offer_or_refuse(action.expert)
        if offer.status != OfferStatus.PENDING:
            raise ValueError(
                f"{action.expert} accepted this application already; decide it instead"
            )
        _refuse_text(action.reason, "the reason", 500)

    @workflow.update
    async def decide(self, action: Decide) -> DecisionView:
        """The accepted expert approves or rejects, with an opinion; returns that decision."""
        offer = self._offer_of(action.expert)
        offer.decision = action
        await self._settled(lambda: offer.outcome is not None)
        assert offer.outcome is not None
        return offer.outcome

    @decide.validator
    def _validate_decide(self, action: Decide) -> None:
        self._accepted_offer_or_refuse(action.expert)
        if not action.approve and not action.opinion.strip():
            raise ValueError("a rejection needs an opinion (--opinion): say why")
        _refuse_text(action.opinion, "the opinion", 2000)

    @workflow.update
    async def request_materials(self, action: RequestMaterials) -> OfferView:
        """The accepted expert asks the applicant for supplementary materials."""
        offer = self._offer_of(action.expert)
        offer.materials_note = action.note
        offer.recorded = False
        await self._settled(lambda: offer.recorded)
        return offer.view()

    @request_materials.validator
    def _validate_request_materials(self, action: RequestMaterials) -> None:
        self._accepted_offer_or_refuse(action.expert)
        if not action.note.strip():
            raise ValueError("say which materials are needed (--note)")
        _refuse_text(action.note, "the note", 500)

    @workflow.update
    async def resubmit(self, resubmission: Resubmission) -> int:
        """The clerk brings corrected or supplementary materials; returns the new round."""
        self._resubmissions += 1
        token = self._resubmissions
        self._resubmission = resubmission
        await self._settled(lambda: token in self._resubmission_outcomes)
        outcome = self._resubmission_outcomes.pop(token)
        if isinstance(outcome, str):
            raise ApplicationError(f"the materials were not taken: {outcome}")
        return outcome

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
        _refuse_text(resubmission.note, "the note", 500)
        problems = self._material_problems(resubmission)
        if problems:
            raise ValueError("the materials were not taken: " + "; ".join(problems))

    def _material_problems(self, resubmission: Resubmission) -> list[str]:
        """Intake's material rules, applied at the door (the register read when the window
        opened)."""
        today = workflow.now().astimezone(self._zone).date()
        problems: list[str] = []
        for i, item in enumerate(resubmission.materials):
            label = f"materials[{i}]"
            reason = text.problem(item.file, field=f"{label}.file", max_length=500)
            if reason:
                problems.append(reason)
            elif not item.file.strip():
                problems.append(f"{label}.file is empty: name the scanned file")
            if not _SHA256.fullmatch(item.sha256):
                problems.append(
                    f"{label}.sha256 is not a SHA-256 digest (64 characters 0-9, a-f): "
                    "compute it from the file (sha256sum)"
                )
            hospital = self._hospitals.get(item.hospital)
            if hospital is None:
                problems.append(
                    f"{label}.hospital: no hospital with code {item.hospital} in the register; "
                    "check the code with the hospital's insurance desk"
                )
                continue
            problems += self._policy.material_problems(
                label,
                issued_on=item.issued_on,
                level=hospital.level,
                grade=hospital.grade,
                public=hospital.public,
                today=today,
            )
        return problems

    @workflow.update
    async def close(self, action: CloseApplication) -> Progress:
        """The office ends the application without a decision; the applicant is told."""
        self._closing = action
        await workflow.wait_condition(lambda: self._finished_at is not None)
        return self.progress()

    @close.validator
    def _validate_close(self, action: CloseApplication) -> None:
        self._refuse_if_finished()
        if self._closing is not None:
            raise ValueError(f"application {self._request.application_id} is being closed")
        _refuse_text(action.reason, "the reason", 500)
        if not action.reason.strip():
            raise ValueError("say why the application is closed (--reason)")

    @workflow.update
    async def assign_expert(self, action: AssignExpert) -> OfferView:
        """The office offers the waiting stage to a named expert (the pool is exhausted)."""
        self._assignment_outcome = None
        self._assignment = action
        await self._settled(lambda: self._assignment_outcome is not None)
        outcome, self._assignment_outcome = self._assignment_outcome, None
        if isinstance(outcome, str):
            raise ApplicationError(f"{action.expert} was not assigned: {outcome}")
        assert outcome is not None
        return outcome

    @assign_expert.validator
    def _validate_assign_expert(self, action: AssignExpert) -> None:
        self._refuse_if_finished()
        if self._stage not in _REVIEW_STAGES or self._current is not None:
            raise ValueError(
                f"application {self._request.application_id} is not waiting for an expert "
                f"({self._status}, {self._stage})"
            )
        if self._pool_exhausted_since is None:
            raise ValueError("the expert pool is not exhausted: the random draw decides (seed 002)")
        if self._assignment is not None:
            raise ValueError("an assignment is already being made")
        if action.expert in {d.expert for d in self._decisions}:
            raise ValueError(f"{action.expert} reviewed another stage of this application")

    # ---- office and hospital actions (Wuhan, Jilin) ------------------------------------------

    @workflow.update
    async def office_accept(self, action: OfficeAccept) -> Progress:
        """A clerk accepts (受理) and designates the assessment hospital."""
        self._office_action = action
        await self._settled(lambda: self._stage == ReviewStage.HOSPITAL_ASSESSMENT)
        return self.progress()

    @office_accept.validator
    def _validate_office_accept(self, action: OfficeAccept) -> None:
        step = self._office_step_or_refuse()
        hospital = action.hospital
        if step.designates == "diagnosing_hospital":
            diagnosing = self._request.diagnosing_hospital
            if hospital is not None and hospital != diagnosing:
                raise ValueError(
                    f"on track {self._track.name} the diagnosing hospital {diagnosing} assesses: "
                    "leave --hospital out"
                )
        elif hospital is None:
            raise ValueError("name the assessment hospital the applicant must visit (--hospital)")
        elif hospital not in self._hospitals:
            raise ValueError(
                f"no hospital with code {hospital} in the {self._policy.region} register"
            )

    @workflow.update
    async def office_return(self, action: OfficeReturn) -> Progress:
        """A clerk returns the application with the reasons (退回)."""
        self._office_action = action
        await self._settled(lambda: self._status == ApplicationStatus.RETURNED)
        return self.progress()

    @office_return.validator
    def _validate_office_return(self, action: OfficeReturn) -> None:
        self._office_step_or_refuse()
        if not action.reasons.strip():
            raise ValueError("say why the application is returned (--reasons)")
        _refuse_text(action.reasons, "the reasons", 500)

    @workflow.update
    async def schedule_examination(self, action: ScheduleExamination) -> Progress:
        """The assessment hospital asks the applicant in; the applicant is told by SMS."""
        self._assessment_hospital = self._assessment_hospital or action.hospital
        self._examination = action
        self._examinations += 1
        asked = self._examinations
        await self._settled(lambda: self._examinations_sent >= asked)
        return self.progress()

    @schedule_examination.validator
    def _validate_schedule_examination(self, action: ScheduleExamination) -> None:
        step = self._assessment_step_or_refuse(action.hospital)
        if not step.on_site_examination:
            raise ValueError(f"track {self._track.name} assesses from the records only")
        if action.at <= workflow.now():
            raise ValueError(f"the examination time {action.at:%Y-%m-%d %H:%M} is in the past")
        if not action.place.strip():
            raise ValueError("say where the examination takes place (--place)")
        _refuse_text(action.place, "the place", 200)

    @workflow.update
    async def hospital_opinion(self, action: HospitalOpinion) -> DecisionView:
        """The assessment hospital's opinion (鉴定意见); returns it as recorded."""
        self._assessment_hospital = self._assessment_hospital or action.hospital
        self._opinion = action
        await self._settled(lambda: self._decided(ReviewStage.HOSPITAL_ASSESSMENT) is not None)
        decision = self._decided(ReviewStage.HOSPITAL_ASSESSMENT)
        assert decision is not None
        return decision

    @hospital_opinion.validator
    def _validate_hospital_opinion(self, action: HospitalOpinion) -> None:
        self._assessment_step_or_refuse(action.hospital)
        if not action.approve and not action.opinion.strip():
            raise ValueError("a negative opinion needs its reason (--opinion)")
        _refuse_text(action.opinion, "the opinion", 2000)

    @workflow.update
    async def office_confirm(self, action: OfficeConfirm) -> DecisionView:
        """The office confirms the opinion or refuses with the reason; returns the decision."""
        self._confirmation = action
        await self._settled(lambda: self._decided(ReviewStage.OFFICE_CONFIRMATION) is not None)
        decision = self._decided(ReviewStage.OFFICE_CONFIRMATION)
        assert decision is not None
        return decision

    @office_confirm.validator
    def _validate_office_confirm(self, action: OfficeConfirm) -> None:
        self._refuse_if_finished()
        if (
            self._stage != ReviewStage.OFFICE_CONFIRMATION
            or self._confirmation is not None
            or self._decided(ReviewStage.HOSPITAL_ASSESSMENT) is None
        ):
            raise ValueError(
                f"application {self._request.application_id} does not wait for the office's "
                f"confirmation now ({self._status}, {self._stage})"
            )
        if not action.confirm and not action.reason.strip():
            raise ValueError("say why the office refuses (--reason)")
        _refuse_text(action.reason, "the reason", 2000)

    def _decided(self, stage: ReviewStage) -> DecisionView | None:
        return next((d for d in self._decisions if d.stage == stage), None)

    def _office_step_or_refuse(self) -> OfficeAcceptance:
        self._refuse_if_finished()
        step = self._track.step(StepKind.OFFICE_ACCEPTANCE)
        if (
            not isinstance(step, OfficeAcceptance)
            or self._stage != ReviewStage.OFFICE_ACCEPTANCE
            or self._status != ApplicationStatus.IN_REVIEW
            or self._office_action is not None
        ):
            raise ValueError(
                f"application {self._request.application_id} does not wait for the office's "
                f"acceptance now ({self._status}, {self._stage})"
            )
        return step

    def _assessment_step_or_refuse(self, hospital: str) -> HospitalAssessment:
        self._refuse_if_finished()
        step = self._track.step(StepKind.HOSPITAL_ASSESSMENT)
        if (
            not isinstance(step, HospitalAssessment)
            or self._stage != ReviewStage.HOSPITAL_ASSESSMENT
            or self._opinion is not None
            or (step.assessors == "designated" and self._assessment_hospital is None)
        ):
            raise ValueError(
                f"application {self._request.application_id} does not wait for a hospital's "
                f"assessment now ({self._status}, {self._stage})"
            )
        if self._assessment_hospital is None:  # the first that acts holds the assessment
            if step.assessors == "assessment_hospitals" and (
                hospital not in self._policy.assessment_hospitals
            ):
                raise ValueError(
                    f"{hospital} is not a designated assessment hospital of "
                    f"{self._policy.region}: one of {', '.join(self._policy.assessment_hospitals)}"
                )
            if not HOSPITAL_CODE.match(hospital):
                raise ValueError(
                    f"{hospital!r} is not a hospital code (a capital letter, then up to 15 "
                    "letters or digits): use the code the office registered for your hospital"
                )
        elif hospital != self._assessment_hospital:
            raise ValueError(
                f"{hospital} is not the assessment hospital of this application "
                f"({self._assessment_hospital} is)"
            )
        return step

    @workflow.signal
    def pool_changed(self) -> None:
        """An expert was added or reinstated: a case waiting for one draws again at once."""
        self._pool_changed = True

    @workflow.signal
    def withdraw_offer(self, withdrawal: WithdrawOffer) -> None:
        """Take back an open, undecided offer of a disqualified expert (no strike)."""
        offer = self._current
        if (
            offer is not None
            and offer.made.expert_code == withdrawal.expert
            and offer.status in (OfferStatus.PENDING, OfferStatus.ACCEPTED)
            and offer.decision is None
            and offer.materials_note is None
        ):
            offer.withdrawn = withdrawal.reason

    async def _settled(self, condition: Any) -> None:
        """Wait in a handler for the process to record its action; fail it if the run ends."""
        await workflow.wait_condition(lambda: condition() or self._finished_at is not None)
        if not condition():
            raise ApplicationError(
                f"application {self._request.application_id} ended ({self._status}) before "
                "this action was recorded"
            )

    # ---- validator helpers -------------------------------------------------------------------

    def _refuse_if_finished(self) -> None:
        if (
            self._finished_at is not None
            or self._stage == ReviewStage.DONE
            or self._closing is not None
        ):
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
            if offer.withdrawn is not None:
                raise ValueError(f"the offer to {expert} was withdrawn: {offer.withdrawn}")
            if offer.status == OfferStatus.PENDING and workflow.now() >= offer.made.accept_deadline:
                raise ValueError(
                    f"the offer to {expert} lapsed at "
                    f"{_local(offer.made.accept_deadline, self._zone)}"
                )
            return offer
        earlier = [o for o in self._offer_views() if o.expert == expert]
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
        if offer.decision_deadline is not None and workflow.now() >= offer.decision_deadline:
            raise ValueError(
                f"the decision deadline of {expert} passed at "
                f"{_local(offer.decision_deadline, self._zone)}"
            )
        return offer


_ASSESSORS = {
    "designated": "the designated hospital",
    "assessment_hospitals": "a designated assessment hospital",
    "any": "an assessment hospital where the applicant lives",
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _refuse_text(value: str | None, field: str, max_length: int) -> None:
    """The free-text rule of models.text, in the validator's words."""
    if value is not None:
        reason = text.problem(value, field=field, max_length=max_length)
        if reason is not None:
            raise ValueError(reason)


def _remaining(deadline: datetime) -> timedelta:
    """Time left until ``deadline`` on the workflow clock (never negative)."""
    return max(deadline - workflow.now(), timedelta(0))


def _local(moment: datetime, zone: timezone) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
