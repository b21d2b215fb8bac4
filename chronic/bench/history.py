"""What one application costs Temporal, read from histories; the baseline's program.

Sizes are those the server stores: payloads as encrypted by the codec, events as protobuf.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

_PAYLOAD = "temporal.api.common.v1.Payload"

OFFER_ACTIVITIES = frozenset({"draw_expert"})
"""Activities whose completion is an offer the experts answer (the draw writes the offer row)."""


def payload_bytes(message: Message) -> int:
    """Bytes of payload data (``Payload.data``) anywhere inside ``message``."""
    total = 0
    for descriptor, value in message.ListFields():
        entry = descriptor.message_type
        if descriptor.type != FieldDescriptor.TYPE_MESSAGE or entry is None:
            continue
        if entry.GetOptions().map_entry:
            inner = entry.fields_by_name["value"].message_type
            if inner is None:
                continue
            items: Iterable[Any] = value.values()
            is_payload = inner.full_name == _PAYLOAD
        else:
            items = value if descriptor.is_repeated else (value,)
            is_payload = entry.full_name == _PAYLOAD
        for item in items:
            total += len(item.data) if is_payload else payload_bytes(item)
    return total


def _kind(event: HistoryEvent, activity_types: Mapping[int, str]) -> str:
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    if event.HasField("activity_task_scheduled_event_attributes"):
        return f"{name} {event.activity_task_scheduled_event_attributes.activity_type.name}"
    if event.HasField("activity_task_completed_event_attributes"):
        scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
        return f"{name} {activity_types.get(scheduled, '?')}"
    return name


def _children(events: Sequence[HistoryEvent]) -> list[str]:
    return [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]


@dataclass
class WorkflowCost:
    """One workflow with its children: event counts and sizes."""

    events: int = 0
    own_events: int = 0
    history_bytes: int = 0
    payload_bytes: int = 0
    activities: int = 0
    updates: int = 0
    child_workflows: int = 0
    timers: int = 0
    search_attribute_upserts: int = 0
    workflow_tasks: int = 0
    payload_by_kind: Counter[str] = field(default_factory=Counter)

    def add(self, events: Sequence[HistoryEvent], *, own: bool) -> None:
        activity_types: dict[int, str] = {}
        for event in events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                attributes = event.activity_task_scheduled_event_attributes
                activity_types[event.event_id] = attributes.activity_type.name
                self.activities += 1
            kind = event.event_type
            self.updates += kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
            self.timers += kind == EventType.EVENT_TYPE_TIMER_STARTED
            self.workflow_tasks += kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            self.search_attribute_upserts += (
                kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
            )
            self.child_workflows += (
                kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
            )
            size = payload_bytes(event)
            self.payload_bytes += size
            if size:
                self.payload_by_kind[_kind(event, activity_types)] += size
            self.history_bytes += event.ByteSize()
        self.events += len(events)
        if own:
            self.own_events += len(events)


async def _events(client: Client, workflow_id: str) -> list[HistoryEvent]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return list(history.events)


async def workflow_cost(client: Client, workflow_id: str) -> tuple[WorkflowCost, str]:
    """The cost of one workflow and its child workflows, and its program for the baseline."""
    cost = WorkflowCost()
    events = await _events(client, workflow_id)
    cost.add(events, own=True)
    child_activities: dict[str, int] = {}
    for child in _children(events):
        child_events = await _events(client, child)
        cost.add(child_events, own=False)
        child_activities[child] = sum(
            e.HasField("activity_task_scheduled_event_attributes") for e in child_events
        )
    return cost, program_of(events, child_activities)


SMS_ACTIVITY = "send_sms"


def program_of(events: Sequence[HistoryEvent], child_activities: Mapping[str, int]) -> str:
    """The baseline's program (see :mod:`chronic.bench.baseline`) for one workflow's history.

    Letters follow the commands in history order, one workflow task at a time; within one
    task an Update completed (``r``) comes first, since the handler returned on what the task
    before it recorded. A child workflow becomes its activities, run beside (``c``).
    """
    letters: list[str] = []
    released: list[str] = []
    steps: list[str] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            letters += released + steps
            released, steps = [], []
        elif event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            # An SMS is started beside the flow and awaited at the end: "c", as a child was.
            steps.append("o" if name in OFFER_ACTIVITIES else "c" if name == SMS_ACTIVITY else "a")
        elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            steps += ["c"] * child_activities.get(child, 1)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            steps.append("u")
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            released.append("r")
    return "".join(letters + released + steps)


@dataclass(frozen=True)
class CostSummary:
    """Mean cost per workflow (with its children) over a sample."""

    sampled: int
    events: float
    own_events: float
    history_bytes: float
    payload_bytes: float
    activities: float
    updates: float
    child_workflows: float
    timers: float
    search_attribute_upserts: float
    workflow_tasks: float
    payload_top: dict[str, float]
    """The largest payload contributors per workflow, by event (and activity) type."""

    def as_json(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "events": self.events,
            "own_events": self.own_events,
            "history_bytes": self.history_bytes,
            "payload_bytes": self.payload_bytes,
            "activities": self.activities,
            "updates": self.updates,
            "child_workflows": self.child_workflows,
            "timers": self.timers,
            "search_attribute_upserts": self.search_attribute_upserts,
            "workflow_tasks": self.workflow_tasks,
            "payload_top": self.payload_top,
        }


async def cost_summary(
    client: Client, workflow_ids: Sequence[str], *, sample: int = 20, parallel: int = 4
) -> CostSummary:
    """Mean cost of up to ``sample`` workflows spread evenly over ``workflow_ids``."""
    if not workflow_ids:
        raise ValueError("no workflows to sample")
    step = max(1, len(workflow_ids) // sample)
    chosen = list(workflow_ids[::step][:sample])
    gate = asyncio.Semaphore(parallel)

    async def one(workflow_id: str) -> WorkflowCost:
        async with gate:
            return (await workflow_cost(client, workflow_id))[0]

    costs = await asyncio.gather(*(one(w) for w in chosen))
    n = len(costs)

    def mean(name: str) -> float:
        return round(sum(getattr(c, name) for c in costs) / n, 1)

    by_kind: Counter[str] = Counter()
    for cost in costs:
        by_kind.update(cost.payload_by_kind)
    return CostSummary(
        sampled=n,
        events=mean("events"),
        own_events=mean("own_events"),
        history_bytes=mean("history_bytes"),
        payload_bytes=mean("payload_bytes"),
        activities=mean("activities"),
        updates=mean("updates"),
        child_workflows=mean("child_workflows"),
        timers=mean("timers"),
        search_attribute_upserts=mean("search_attribute_upserts"),
        workflow_tasks=mean("workflow_tasks"),
        payload_top={kind: round(size / n) for kind, size in by_kind.most_common(5)},
    )
