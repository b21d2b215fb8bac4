"""The assignment role: random expert draws, offers and strikes."""

from __future__ import annotations

from typing import ClassVar, Protocol

from temporalio import activity

from models.messages import DrawRequest, DrawResult, OfferAnswer, StrikeOutcome

QUEUE = "assignment"


class AssignmentRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def draw_expert(self, request: DrawRequest) -> DrawResult: ...

    @activity.defn
    async def answer_offer(self, answer: OfferAnswer) -> StrikeOutcome: ...
