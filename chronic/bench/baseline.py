"""The baseline of `chronic bench`: a bare workflow shaped like one application, no database.

Its input is a *program* derived from a real application's history
(:func:`chronic.bench.history.program_of`), one letter per step, in the application's order:

* ``a`` — run one no-op activity and wait for it;
* ``o`` — the same, and the activity tells the bench's experts about an offer (as the draw
  activity's offer row does for the real process);
* ``c`` — start one no-op activity beside the flow, awaited only at the end (what an SMS
  delivery child does for the application: it counts as its one activity);
* ``u`` — wait until the next Update (``accept`` or ``decide``) has been accepted;
* ``r`` — let the oldest waiting Update handler return (the application's handlers return
  once the process has recorded the action).

So the baseline runs the same number of activities and Updates as the application, in the
same order, on the same server and through the same data converter (pydantic + encryption),
with none of the product's database work, search attributes, timers or child workflows.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.messages import AcceptOffer, Decide

WORKFLOW_TYPE = "BenchBaseline"
NOOP = "bench_noop"
OFFER = "bench_offer"
PROGRAM_LETTERS = frozenset("aocur")
_TIMEOUT = timedelta(seconds=30)


class BaselineInput(BaseModel):
    """What one baseline workflow runs: the program and the expert its offers name."""

    model_config = ConfigDict(frozen=True)

    program: str
    expert: str = "E000"


class OfferNote(BaseModel):
    """The argument of the offer activity: which workflow offers what to whom."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    seq: int
    expert: str


class StepNote(BaseModel):
    """The argument of a no-op activity (its place in the program)."""

    model_config = ConfigDict(frozen=True)

    step: int


@workflow.defn(name=WORKFLOW_TYPE)
class BaselineWorkflow:
    def __init__(self) -> None:
        self._accepted = 0  # Updates accepted so far
        self._taken = 0  # of those, how many the program has waited for ("u")
        self._released = 0  # handlers allowed to return ("r")
        self._offers = 0
        self._offer_open = False  # an offer is out and not yet accepted
        self._decision_open = False  # accepted, not yet decided
        self._expert = ""

    @workflow.run
    async def run(self, request: BaselineInput) -> int:
        self._expert = request.expert
        beside: list[Any] = []
        for index, letter in enumerate(request.program):
            if letter == "a":
                await _noop(index)
            elif letter == "o":
                self._offers += 1
                await workflow.execute_activity(
                    OFFER,
                    OfferNote(
                        workflow_id=workflow.info().workflow_id,
                        seq=self._offers,
                        expert=request.expert,
                    ),
                    start_to_close_timeout=_TIMEOUT,
                )
                # Like the application, which knows its offer once the draw has returned.
                self._offer_open = True
            elif letter == "c":
                beside.append(
                    workflow.start_activity(
                        NOOP, StepNote(step=index), start_to_close_timeout=_TIMEOUT
                    )
                )
            elif letter == "u":
                await workflow.wait_condition(lambda: self._accepted > self._taken)
                self._taken += 1
            elif letter == "r":
                self._released += 1
            else:
                raise ValueError(f"unknown program step {letter!r}")
        await asyncio.gather(*beside)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._accepted

    async def _handled(self) -> int:
        self._accepted += 1
        mine = self._accepted
        await workflow.wait_condition(lambda: self._released >= mine)
        return mine

    @workflow.update
    async def accept(self, action: AcceptOffer) -> int:
        self._offer_open, self._decision_open = False, True
        return await self._handled()

    @accept.validator
    def _validate_accept(self, action: AcceptOffer) -> None:
        if not self._offer_open:
            raise ValueError("no offer is open")
        if action.expert != self._expert:
            raise ValueError(f"not offered to {action.expert}")

    @workflow.update
    async def decide(self, action: Decide) -> int:
        self._decision_open = False
        return await self._handled()

    @decide.validator
    def _validate_decide(self, action: Decide) -> None:
        if not self._decision_open or action.expert != self._expert:
            raise ValueError(f"{action.expert} has not accepted an offer")


async def _noop(step: int) -> None:
    await workflow.execute_activity(NOOP, StepNote(step=step), start_to_close_timeout=_TIMEOUT)
