"""Random assignment (随机推送) on the ``assignment`` queue: draws, offers, strikes.

The draw runs here, not in the workflow, because it needs the expert pool; its result (expert
and pool size) is recorded both in the offer row and in the workflow history, and the row
keeps the candidate list and the seed, so an auditor can re-derive it (models/draw.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities import audit, metrics
from activities.errors import missing_record
from chronic.db import Database
from models.domain import ExpertStatus, OfferStatus
from models.draw import draw_seed, drawn
from models.messages import DrawRequest, DrawResult, OfferAnswer, OfferMade, StrikeOutcome
from models.roles.assignment import AssignmentRole
from models.tables import Application, Expert, Offer

# Which answers may follow which offer state; anything else is a retry of an applied answer.
_FROM_STATES: dict[OfferStatus, tuple[OfferStatus, ...]] = {
    OfferStatus.ACCEPTED: (OfferStatus.PENDING,),
    OfferStatus.DECLINED: (OfferStatus.PENDING,),
    OfferStatus.LAPSED: (OfferStatus.PENDING,),
    OfferStatus.DECISION_LAPSED: (OfferStatus.ACCEPTED,),
    OfferStatus.COMPLETED: (OfferStatus.ACCEPTED,),
    OfferStatus.WITHDRAWN: (OfferStatus.PENDING, OfferStatus.ACCEPTED),
}
_STRIKES = (OfferStatus.DECLINED, OfferStatus.LAPSED, OfferStatus.DECISION_LAPSED)
_LAPSES = (OfferStatus.LAPSED, OfferStatus.DECISION_LAPSED)
# Offers that leave an expert eligible again once everyone else has been tried.
_RETRYABLE = (OfferStatus.LAPSED, OfferStatus.WITHDRAWN)
_OPEN = (OfferStatus.PENDING, OfferStatus.ACCEPTED)


class AssignmentActivities(AssignmentRole):
    """The expert pool: who may be drawn, the offers made, and the strikes counted."""

    def __init__(self, db: Database, *, draw_key: bytes) -> None:
        self.db = db
        self.draw_key = draw_key  # the office's key of verifiable draws (models/draw.py)

    @activity.defn
    async def draw_expert(self, request: DrawRequest) -> DrawResult:
        """Offer the application to one eligible expert drawn at random; None if nobody is.

        Eligible: active, reviews the disease's category, not a reviewer of another stage,
        not from the applicant's diagnosing hospital, and never offered this application —
        except that once everyone eligible has been tried, experts whose offers only lapsed
        (or were withdrawn) are eligible again. An expert named by the office (``expert``)
        must meet the same rules, bar the earlier offers. The accept window counts from the
        moment the offer row is recorded (this attempt's start on the server's clock).
        """
        async with self.db.session() as session:
            existing = await session.scalar(
                sa.select(Offer).where(
                    col(Offer.application_id) == request.application_id,
                    col(Offer.seq) == request.seq,
                )
            )
            if existing is not None:  # a retry of a draw that was already recorded
                return DrawResult(offer=_offer_made(existing))
            application = await session.get(Application, request.application_id)
            if application is None:
                raise missing_record("application", request.application_id)
            eligible = sa.select(col(Expert.code)).where(
                col(Expert.status) == ExpertStatus.ACTIVE,
                col(Expert.categories).contains([request.category]),
                col(Expert.code).not_in(request.exclude_experts),
                col(Expert.hospital_code) != application.diagnosing_hospital_code,
            )
            tried = sa.select(col(Offer.expert_code)).where(
                col(Offer.application_id) == request.application_id
            )
            if request.expert is not None:
                problem = await _hand_assignment_problem(session, eligible, request)
                if problem is not None:
                    return DrawResult(problem=problem)
                pool, reoffer = (
                    [request.expert],
                    request.expert in set(await session.scalars(tried)),
                )
            else:
                pool = await _codes(session, eligible.where(col(Expert.code).not_in(tried)))
                reoffer = False
                if not pool:
                    # Everyone eligible was tried: those who only let an offer lapse return.
                    blocked = tried.where(col(Offer.status).not_in(_RETRYABLE))
                    pool = await _codes(
                        session,
                        eligible.where(
                            col(Expert.code).in_(tried), col(Expert.code).not_in(blocked)
                        ),
                    )
                    reoffer = bool(pool)
            if not pool:
                activity.logger.info(
                    "no eligible %s expert for %s", request.category, request.application_id
                )
                return DrawResult()
            seed: str | None = None
            if request.expert is not None:  # named by the office: nothing random to verify
                chosen = request.expert
            else:
                seed = draw_seed(self.draw_key, request.application_id, request.seq)
                chosen = drawn(pool, seed)
            offered_at = _server_now()
            offer = Offer(
                application_id=request.application_id,
                seq=request.seq,
                stage=request.stage,
                expert_code=chosen,
                pool_size=len(pool),
                candidates=sorted(pool),
                draw_seed=seed,
                status=OfferStatus.PENDING,
                offered_at=offered_at,
                accept_deadline=offered_at + request.accept_window,
            )
            session.add(offer)
            await session.flush()
            await audit.record(
                session,
                step_key=f"{request.application_id}:offer:{request.seq}",
                application_id=request.application_id,
                actor=request.actor,
                action="offer_assigned" if request.expert else "offer_made",
                at=offered_at,
                expert=chosen,
                stage=request.stage.value,
                pool_size=len(pool),
                reoffer=reoffer,
            )
            return DrawResult(offer=_offer_made(offer))

    @activity.defn
    async def answer_offer(self, answer: OfferAnswer) -> StrikeOutcome:
        """Record what became of an offer and count the expert's strikes.

        An acceptance clears the expert's consecutive strikes; a decline, a lapse or a lapsed
        decision adds one, and the strike that reaches the policy's limit disqualifies. A
        lapse recorded more than ``outage_grace`` after its deadline means our own system was
        down when the window closed: the offer is withdrawn instead, without a strike. A
        withdrawal never counts.
        """
        async with self.db.session() as session:
            offer = await session.get(Offer, answer.offer_id, with_for_update=True)
            if offer is None:
                raise missing_record("offer", answer.offer_id)
            expert = await session.get(Expert, offer.expert_code, with_for_update=True)
            assert expert is not None  # foreign key
            status, reason = answer.status, answer.reason
            if status in _LAPSES and answer.deadline is not None:
                late = _server_now() - answer.deadline
                if late > answer.outage_grace:
                    status = OfferStatus.WITHDRAWN
                    reason = (
                        f"our system was unavailable when the window closed (recorded "
                        f"{_minutes(late)} late): withdrawn without a strike"
                    )
            await _move(
                session,
                offer,
                expert,
                status,
                at=answer.at,
                reason=reason,
                decision_deadline=answer.decision_deadline,
                strikes_to_disqualify=answer.strikes_to_disqualify,
            )
            disqualified = expert.status == ExpertStatus.DISQUALIFIED
            elsewhere: list[str] = []
            if disqualified:
                # Withdrawn at once: the expert's other open offers go back to the draw.
                elsewhere = list(
                    await session.scalars(
                        sa.select(col(Offer.application_id))
                        .where(
                            col(Offer.expert_code) == expert.code,
                            col(Offer.status).in_(_OPEN),
                            col(Offer.id) != offer.id,
                        )
                        .order_by(col(Offer.application_id))
                    )
                )
            return StrikeOutcome(
                expert_code=expert.code,
                consecutive_strikes=expert.consecutive_strikes,
                disqualified=disqualified,
                hospital_code=expert.hospital_code,
                status=offer.status,
                reason=offer.decline_reason if offer.status == OfferStatus.WITHDRAWN else None,
                disqualified_at=expert.disqualified_at if disqualified else None,
                open_offers_elsewhere=tuple(elsewhere),
            )


async def complete_offer(session: AsyncSession, offer_id: int, at: datetime) -> OfferStatus:
    """The expert's decision ends the accepted offer ``offer_id`` (completed); its status after.

    For the review role, which records the decision in the same transaction. An offer taken
    back meanwhile (its expert disqualified elsewhere) stays withdrawn; a retry changes nothing.
    """
    offer = await session.get(Offer, offer_id, with_for_update=True)
    if offer is None:
        raise missing_record("offer", offer_id)
    expert = await session.get(Expert, offer.expert_code, with_for_update=True)
    assert expert is not None  # foreign key
    await _move(session, offer, expert, OfferStatus.COMPLETED, at=at)
    return offer.status


async def withdraw_open_offers(
    session: AsyncSession, application_id: str, *, at: datetime, reason: str
) -> None:
    """Withdraw every offer still open on ``application_id``, as ``answer_offer`` withdraws
    one (no strike; its audit event and metric): the application is closing, and an offer the
    workflow never took in (its draw's result came with a cancel) must leave the list too."""
    offers = await session.scalars(
        sa.select(Offer)
        .where(col(Offer.application_id) == application_id, col(Offer.status).in_(_OPEN))
        .order_by(col(Offer.seq))
        .with_for_update()
    )
    for offer in offers.all():
        expert = await session.get(Expert, offer.expert_code, with_for_update=True)
        assert expert is not None  # foreign key
        await _move(session, offer, expert, OfferStatus.WITHDRAWN, at=at, reason=reason)


async def _move(
    session: AsyncSession,
    offer: Offer,
    expert: Expert,
    status: OfferStatus,
    *,
    at: datetime,
    reason: str | None = None,
    decision_deadline: datetime | None = None,
    strikes_to_disqualify: int = 0,
) -> None:
    """Move ``offer`` to ``status`` if it may go there from where it is (else it is a retry of
    an applied answer), with the expert's strikes and the audit event."""
    if offer.status not in _FROM_STATES[status]:
        return
    offer.status = status
    metrics.offer_outcome(status.value)
    if status in (OfferStatus.ACCEPTED, OfferStatus.DECLINED):
        offer.answered_at = at
    if decision_deadline is not None:
        offer.decision_deadline = decision_deadline
    if reason:
        offer.decline_reason = reason[:500]
    if status == OfferStatus.ACCEPTED:
        expert.consecutive_strikes = 0
    elif status in _STRIKES:
        expert.consecutive_strikes += 1
        if (
            expert.consecutive_strikes >= strikes_to_disqualify
            and expert.status == ExpertStatus.ACTIVE
        ):
            expert.status = ExpertStatus.DISQUALIFIED
            expert.disqualified_at = at
            metrics.expert_disqualified()
    await audit.record(
        session,
        step_key=f"{offer.application_id}:offer:{offer.seq}:{status}",
        application_id=offer.application_id,
        actor=f"expert:{expert.code}"
        if status in (OfferStatus.ACCEPTED, OfferStatus.DECLINED)
        else "system",
        action=f"offer_{status}",
        at=at,
        expert=expert.code,
        strikes=expert.consecutive_strikes,
        reason=reason,
    )


async def _codes(session: AsyncSession, query: Select[str]) -> list[str]:
    return list(await session.scalars(query.order_by(col(Expert.code))))


async def _hand_assignment_problem(
    session: AsyncSession, eligible: Select[str], request: DrawRequest
) -> str | None:
    """Why the office's chosen expert cannot take this stage, or None."""
    expert = await session.get(Expert, request.expert)
    if expert is None:
        return f"no expert with code {request.expert} in the pool"
    if expert.code not in set(await session.scalars(eligible)):
        return (
            f"{expert.code} is {expert.status}, reviews {', '.join(expert.categories)}, from "
            f"hospital {expert.hospital_code}: must be active, review {request.category}, not "
            "be from the diagnosing hospital, and not have reviewed another stage"
        )
    return None


def _server_now() -> datetime:
    """Now on the Temporal server's clock: this attempt's start (the test server's, in tests)."""
    return activity.info().started_time


def _minutes(late: timedelta) -> str:
    return f"{int(late.total_seconds() // 60)} min"


def _offer_made(offer: Offer) -> OfferMade:
    assert offer.id is not None
    return OfferMade(
        offer_id=offer.id,
        seq=offer.seq,
        expert_code=offer.expert_code,
        pool_size=offer.pool_size,
        offered_at=offer.offered_at,
        accept_deadline=offer.accept_deadline,
    )
