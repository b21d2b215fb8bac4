"""Random assignment (随机推送) on the ``assignment`` queue: draws, offers, strikes.

The draw runs here, not in the workflow, because it needs the expert pool; its result (expert
and pool size) is recorded both in the offer row and in the workflow history.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlmodel import col
from temporalio import activity

from activities import audit, metrics
from activities.errors import missing_record
from chronic.db import Database
from models.domain import ExpertStatus, OfferStatus
from models.messages import DrawRequest, DrawResult, OfferAnswer, OfferMade, StrikeOutcome
from models.tables import Application, Expert, Offer

_DRAW = secrets.SystemRandom()

# Which answers may follow which offer state; anything else is a retry of an applied answer.
_FROM_STATES: dict[OfferStatus, tuple[OfferStatus, ...]] = {
    OfferStatus.ACCEPTED: (OfferStatus.PENDING,),
    OfferStatus.DECLINED: (OfferStatus.PENDING,),
    OfferStatus.LAPSED: (OfferStatus.PENDING,),
    OfferStatus.DECISION_LAPSED: (OfferStatus.ACCEPTED,),
    OfferStatus.COMPLETED: (OfferStatus.ACCEPTED,),
}
_STRIKES = (OfferStatus.DECLINED, OfferStatus.LAPSED, OfferStatus.DECISION_LAPSED)


class AssignmentActivities:
    """The expert pool: who may be drawn, the offers made, and the strikes counted."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn
    async def draw_expert(self, request: DrawRequest) -> DrawResult:
        """Offer the application to one eligible expert drawn at random; None if nobody is.

        Eligible: active, reviews the disease's category, never offered this application,
        not a reviewer of another stage, not from the applicant's diagnosing hospital.
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
            offered_before = sa.select(col(Offer.expert_code)).where(
                col(Offer.application_id) == request.application_id
            )
            pool = list(
                await session.scalars(
                    sa.select(col(Expert.code))
                    .where(
                        col(Expert.status) == ExpertStatus.ACTIVE,
                        col(Expert.categories).contains([request.category]),
                        col(Expert.code).not_in(offered_before),
                        col(Expert.code).not_in(request.exclude_experts),
                        col(Expert.hospital_code) != application.diagnosing_hospital_code,
                    )
                    .order_by(col(Expert.code))
                )
            )
            if not pool:
                activity.logger.info(
                    "no eligible %s expert for %s", request.category, request.application_id
                )
                return DrawResult()
            chosen = _DRAW.choice(pool)
            offer = Offer(
                application_id=request.application_id,
                seq=request.seq,
                stage=request.stage,
                expert_code=chosen,
                pool_size=len(pool),
                status=OfferStatus.PENDING,
                offered_at=request.offered_at,
                accept_deadline=request.accept_deadline,
            )
            session.add(offer)
            await session.flush()
            await audit.record(
                session,
                step_key=f"{request.application_id}:offer:{request.seq}",
                application_id=request.application_id,
                actor="system",
                action="offer_made",
                at=request.offered_at,
                expert=chosen,
                stage=request.stage.value,
                pool_size=len(pool),
            )
            return DrawResult(offer=_offer_made(offer))

    @activity.defn
    async def answer_offer(self, answer: OfferAnswer) -> StrikeOutcome:
        """Record what became of an offer and count the expert's strikes.

        An acceptance clears the expert's consecutive strikes; a decline, a lapse or a lapsed
        decision adds one, and the strike that reaches the policy's limit disqualifies.
        """
        async with self.db.session() as session:
            offer = await session.get(Offer, answer.offer_id, with_for_update=True)
            if offer is None:
                raise missing_record("offer", answer.offer_id)
            expert = await session.get(Expert, offer.expert_code, with_for_update=True)
            assert expert is not None  # foreign key
            if offer.status in _FROM_STATES[answer.status]:
                offer.status = answer.status
                metrics.offer_outcome(answer.status.value)
                if answer.status in (OfferStatus.ACCEPTED, OfferStatus.DECLINED):
                    offer.answered_at = answer.at
                if answer.decision_deadline is not None:
                    offer.decision_deadline = answer.decision_deadline
                if answer.reason:
                    offer.decline_reason = answer.reason
                if answer.status == OfferStatus.ACCEPTED:
                    expert.consecutive_strikes = 0
                elif answer.status in _STRIKES:
                    expert.consecutive_strikes += 1
                    if (
                        expert.consecutive_strikes >= answer.strikes_to_disqualify
                        and expert.status == ExpertStatus.ACTIVE
                    ):
                        expert.status = ExpertStatus.DISQUALIFIED
                        expert.disqualified_at = answer.at
                        metrics.expert_disqualified()
                await audit.record(
                    session,
                    step_key=f"{offer.application_id}:offer:{offer.seq}:{answer.status}",
                    application_id=offer.application_id,
                    actor=f"expert:{expert.code}"
                    if answer.status in (OfferStatus.ACCEPTED, OfferStatus.DECLINED)
                    else "system",
                    action=f"offer_{answer.status}",
                    at=answer.at,
                    expert=expert.code,
                    strikes=expert.consecutive_strikes,
                    reason=answer.reason,
                )
            return StrikeOutcome(
                expert_code=expert.code,
                consecutive_strikes=expert.consecutive_strikes,
                disqualified=expert.status == ExpertStatus.DISQUALIFIED,
                hospital_code=expert.hospital_code,
            )


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
