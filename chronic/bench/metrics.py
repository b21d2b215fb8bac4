"""Where the time goes: the workers' own Temporal metrics, before and after a phase.

Every worker role serves the SDK's Prometheus metrics (``CHRONIC_METRICS_PORT_BASE`` + role
index); the bench's baseline worker serves the same on a port of its own. The differences of
their latency histograms' ``_sum`` and ``_count`` over a phase give mean times (ms) of each
step of a task's trip:

* ``workflow_task_schedule_to_start`` / ``activity_schedule_to_start`` — waiting in the
  server's task queue until a worker poll took the task;
* ``workflow_task_execution`` / ``activity_execution`` — the worker's own work (workflow code,
  or the activity with its database transactions);
* ``respond_workflow_task`` / ``respond_activity_task`` — the server persisting the result
  (``RespondWorkflowTaskCompleted`` / ``RespondActivityTaskCompleted`` as the worker sees it).
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

# figure name → (metric, operation label or None)
_FIGURES: dict[str, tuple[str, str | None]] = {
    "workflow_task_schedule_to_start": ("temporal_workflow_task_schedule_to_start_latency", None),
    "workflow_task_execution": ("temporal_workflow_task_execution_latency", None),
    "respond_workflow_task": ("temporal_request_latency", "RespondWorkflowTaskCompleted"),
    "activity_schedule_to_start": ("temporal_activity_schedule_to_start_latency", None),
    "activity_execution": ("temporal_activity_execution_latency", None),
    "respond_activity_task": ("temporal_request_latency", "RespondActivityTaskCompleted"),
}

Snapshot = dict[str, tuple[float, float]]
"""figure → (sum in ms, count)."""


def parse(text: str) -> Snapshot:
    """The figures' sums and counts in one Prometheus text exposition."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        for suffix, slot in (("_sum", 0), ("_count", 1)):
            if not name.endswith(suffix):
                continue
            base = name.removesuffix(suffix)
            for figure, (metric, operation) in _FIGURES.items():
                if base == metric and (operation is None or f'operation="{operation}"' in labels):
                    totals[figure][slot] += float(value)
    return {figure: (total[0], total[1]) for figure, total in totals.items()}


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


async def scrape(endpoints: Mapping[str, str]) -> dict[str, Snapshot]:
    """A snapshot per name of the reachable ``endpoints`` (name → metrics URL)."""

    async def one(url: str) -> Snapshot | None:
        try:
            return parse(await asyncio.to_thread(_fetch, url))
        except OSError:
            return None

    found = await asyncio.gather(*(one(url) for url in endpoints.values()))
    return {name: snap for name, snap in zip(endpoints, found, strict=True) if snap is not None}


def means(before: Mapping[str, Snapshot], after: Mapping[str, Snapshot]) -> dict[str, Any]:
    """Mean ms and count per name and figure, over what happened between the snapshots."""
    result: dict[str, Any] = {}
    for name, end in after.items():
        start = before.get(name, {})
        figures = {}
        for figure, (total, count) in end.items():
            total0, count0 = start.get(figure, (0.0, 0.0))
            if count - count0 > 0:
                figures[figure] = {
                    "mean_ms": round((total - total0) / (count - count0), 1),
                    "count": int(count - count0),
                }
        if figures:
            result[name] = figures
    return result


CACHE_SIZE = "temporal_sticky_cache_size"
CACHE_HITS = "temporal_sticky_cache_hit"
CACHE_MISSES = "temporal_sticky_cache_miss"


def totals(text: str, names: Collection[str]) -> dict[str, float]:
    """The sum over all series of each metric in ``names`` (absent ones are 0)."""
    found = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name = head.partition("{")[0]
        if name in found:
            found[name] += float(value)
    return found


async def read_totals(url: str, names: Collection[str]) -> dict[str, float] | None:
    """:func:`totals` of the metrics at ``url``; None when it does not answer."""
    try:
        return totals(await asyncio.to_thread(_fetch, url), names)
    except OSError:
        return None
