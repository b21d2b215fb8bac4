"""Simulated experts that answer as soon as an offer appears, without querying workflows.

A driver that polls the ``progress`` query of every application in a tight loop (as
``chronic demo`` does, fine for a demo) makes the server and the orchestration worker answer
hundreds of queries a second: it loads the system more than the work it measures. Here the
experts learn of offers the way a real expert's inbox would, from outside the workflows:

* the **full flow**: one query of the business database's ``offer`` table per poll interval
  (default 50 ms) for the pending offers of every application in flight — a single indexed
  read on Postgres, nothing on Temporal or the workers (:class:`DatabaseOffers`);
* the **baseline**: its offer activity writes a line that the bench reads into an in-memory
  list, drained at the same poll interval (:class:`NotedOffers`).

So both learn of an offer the same way — when the activity that makes it has run, at the next
poll — and answer with Updates: ``accept``, then ``decide`` (approve), the same Updates and
arguments as `chronic expert accept|decide`. An offer row is written inside the draw activity,
so an expert can be faster than the workflow: the ``accept`` validator refuses while the
workflow has not yet taken in its draw's result. The expert then tries again at the next poll;
such refusals leave no history and are counted (``refused``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from chronic.db import Database
from models.domain import OfferStatus
from models.tables import Offer

log = logging.getLogger(__name__)

OPINION = "诊断明确，材料齐全，符合认定标准"
"""The opinion of every simulated approval."""


@dataclass(frozen=True)
class OfferSeen:
    """A pending offer as an expert's inbox shows it."""

    workflow_id: str
    seq: int
    expert: str


class OfferFeed(Protocol):
    """Where the simulated experts learn of offers; polled once per interval."""

    async def poll(self) -> list[OfferSeen]: ...


class DatabaseOffers:
    """Pending offers of the applications in ``watched``, read from the ``offer`` table."""

    def __init__(self, db: Database, watched: Collection[str]) -> None:
        self.db = db
        self.watched = watched
        self.reads = 0

    async def poll(self) -> list[OfferSeen]:
        if not self.watched:
            return []
        self.reads += 1
        async with self.db.session() as session:
            rows = await session.exec(
                select(Offer.application_id, Offer.seq, Offer.expert_code).where(
                    col(Offer.status) == OfferStatus.PENDING,
                    col(Offer.application_id).in_(list(self.watched)),
                )
            )
            return [OfferSeen(a, seq, expert) for a, seq, expert in rows]


class NotedOffers:
    """Offers noted in memory (the baseline worker's lines), handed out at the next poll."""

    def __init__(self) -> None:
        self._noted: list[OfferSeen] = []
        self.reads = 0

    def note(self, offer: OfferSeen) -> None:
        self._noted.append(offer)

    async def poll(self) -> list[OfferSeen]:
        self.reads += 1
        noted, self._noted = self._noted, []
        return noted


Answer = Callable[[OfferSeen], Awaitable[object]]


@dataclass
class UpdateFigures:
    """Client-side round trips of the experts' Updates (seconds), refusals and failures."""

    round_trips: dict[str, list[float]] = field(default_factory=dict)
    refused: int = 0
    read_errors: int = 0  # offer reads that failed (the database restarting): tried again
    failed: list[str] = field(default_factory=list)

    def all_round_trips(self) -> list[float]:
        return [t for times in self.round_trips.values() for t in times]


class SimulatedExperts:
    """Answer every offer the feed shows: ``accept``, then ``decide``, as soon as it appears.

    Args:
        feed: where offers are learned (polled every ``interval`` seconds).
        accept, decide: send the Update for one offer.
        max_tries: an Update refused this often (each retried at the next poll) is given up.
    """

    def __init__(
        self,
        feed: OfferFeed,
        *,
        accept: Answer,
        decide: Answer,
        interval: float = 0.05,
        max_tries: int = 200,
    ) -> None:
        self.feed = feed
        self.accept = accept
        self.decide = decide
        self.interval = interval
        self.max_tries = max_tries
        self.figures = UpdateFigures()
        self._seen: set[tuple[str, int]] = set()
        self._answering: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Poll and answer until cancelled."""
        try:
            while True:
                try:
                    offers = await self.feed.poll()
                except (OSError, SQLAlchemyError) as error:
                    self.figures.read_errors += 1
                    log.info("simulated experts: reading offers failed (%s); trying again", error)
                    offers = []
                for offer in offers:
                    key = (offer.workflow_id, offer.seq)
                    if key in self._seen:
                        continue
                    self._seen.add(key)
                    task = asyncio.create_task(self._answer(offer))
                    self._answering.add(task)
                    task.add_done_callback(self._answering.discard)
                await asyncio.sleep(self.interval)
        finally:
            for task in list(self._answering):
                task.cancel()

    async def _answer(self, offer: OfferSeen) -> None:
        if await self._update("accept", self.accept, offer):
            await self._update("decide", self.decide, offer)

    async def _update(self, name: str, send: Answer, offer: OfferSeen) -> bool:
        for _ in range(self.max_tries):
            started = time.perf_counter()
            try:
                await send(offer)
            except WorkflowUpdateFailedError as error:
                # Refused by the validator: the workflow has not taken in the offer yet.
                self.figures.refused += 1
                last = str(error.cause or error)
            except RPCError as error:
                self.figures.refused += 1
                last = f"{error.status.name}: {error.message}"
            else:
                elapsed = time.perf_counter() - started
                self.figures.round_trips.setdefault(name, []).append(elapsed)
                return True
            await asyncio.sleep(self.interval)
        self.figures.failed.append(f"{offer.workflow_id} {name}: {last}")
        return False
