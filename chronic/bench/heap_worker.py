"""`chronic bench --open N --heap`'s worker: ``python -m chronic.bench.heap_worker QUEUE
METRICS``.

The orchestration role's worker (:func:`workers.orchestration.build`, the same workflows,
runner and cache size) on a task queue of its own, under :mod:`tracemalloc` from its first
line, so that what a cached workflow holds can be told apart: Python's heap by allocation
site, malloc's bytes in use (glibc's ``mallinfo2``; Python objects of 512 bytes and more and
every native allocation, the SDK core's among them) and the resident set. The bench's process
submits the applications (and so never shares this interpreter); only their workflows run here.

Line protocol, one JSON document per answer: it writes ``ready`` once it polls; each
``snapshot`` line on standard input is answered with ``snapshot {"rss": …, "malloc": …,
"traced": …, "sites": […]}``, where the sites are the largest growths of Python's heap
since the first snapshot (bytes and objects by file and line). It stops on SIGINT / SIGTERM or
when its standard input ends (the bench closed it, or is gone).
"""

from __future__ import annotations

import tracemalloc

if __name__ == "__main__":  # before anything else is imported: every later allocation traced
    import sys

    tracemalloc.start(1)  # one frame: the line that allocated

import asyncio
import ctypes
import gc
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from chronic.bench.baseline_worker import (
    READY_LINE,
    SHUTDOWN_SECONDS,
    leave_within,
    stdin_reader,
)
from chronic.bench.driver import BenchError, bench_process, free_port
from chronic.settings import Settings, get_settings
from chronic.temporal_client import connect
from workers import orchestration
from workers.resources import Resources
from workers.runner import stop_on_signals

HEAP_QUEUE = "bench-heap"
"""The heap worker's task queue: one name, so that a run finds what an interrupted one left."""
HEAP_WORKER = "heap worker"
SNAPSHOT = "snapshot"
TOP_SITES = 15


class _MallInfo2(ctypes.Structure):
    _fields_ = [  # glibc's struct mallinfo2, in order
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_in_use() -> int | None:
    """Bytes malloc has handed out and not had back (glibc only; None elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _site(frame: tracemalloc.Frame) -> str:
    """``file:line`` from the package down (``temporalio/worker/…``, ``workflows/…``)."""
    path = Path(frame.filename)
    parts = path.parts
    for root in ("site-packages", "lib"):
        if root in parts:
            parts = parts[len(parts) - parts[::-1].index(root) :]
            break
    else:
        project = Path(__file__).resolve().parents[2]
        if path.is_relative_to(project):
            parts = path.relative_to(project).parts
    return f"{'/'.join(parts)}:{frame.lineno}"


class Heap:
    """Snapshots of this process; every one after the first is compared with the first."""

    def __init__(self) -> None:
        self.first: tracemalloc.Snapshot | None = None

    def snapshot(self) -> dict[str, Any]:
        gc.collect()
        taken = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        figures: dict[str, Any] = {
            "rss": psutil.Process().memory_info().rss,
            "malloc": _malloc_in_use(),
            "traced": sum(trace.size for trace in taken.traces),
            # tracemalloc's own bookkeeping, in malloc's and the resident figures: taken off
            "tracer": tracemalloc.get_tracemalloc_memory(),
            "sites": [],
        }
        if self.first is None:
            self.first = taken
        else:
            figures["sites"] = [
                {
                    "site": _site(stat.traceback[-1]),
                    "bytes": stat.size_diff,
                    "objects": stat.count_diff,
                }
                for stat in taken.compare_to(self.first, "lineno")[:TOP_SITES]
            ]
        return figures


async def _serve(heap: Heap, stop: asyncio.Event) -> None:
    """Answer ``snapshot`` lines until standard input ends."""
    reader = await stdin_reader()
    while line := await reader.readline():
        if line.decode().strip() == SNAPSHOT:
            figures = await asyncio.to_thread(heap.snapshot)
            sys.stdout.write(f"{SNAPSHOT} {json.dumps(figures)}\n")
            sys.stdout.flush()
    stop.set()


async def main(task_queue: str, metrics: str) -> None:
    """Run the orchestration role's worker on ``task_queue``; its SDK metrics on ``metrics``."""
    settings = get_settings()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics)))
    client = await connect(settings, runtime=runtime)
    stop = stop_on_signals()
    worker = orchestration.build(
        client,
        Resources(settings, client=client),
        graceful_shutdown=timedelta(seconds=5),
        task_queue=task_queue,
    )
    async with worker:
        sys.stdout.write(READY_LINE + "\n")
        sys.stdout.flush()
        serving = asyncio.create_task(_serve(Heap(), stop))
        await stop.wait()
        serving.cancel()
        leave_within(SHUTDOWN_SECONDS)


@dataclass
class HeapWorker:
    """The bench's end of a running heap worker."""

    process: asyncio.subprocess.Process
    metrics: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    @asynccontextmanager
    async def run(cls, settings: Settings) -> AsyncIterator[HeapWorker]:
        """A heap worker on :data:`HEAP_QUEUE`, polling, its metrics on a free port and its
        log in the state folder; stopped on the way out."""
        metrics = f"{settings.metrics_host}:{free_port()}"
        log_path = settings.state_path / "bench-heap-worker.log"
        args = [HEAP_QUEUE, metrics]
        async with bench_process(__name__, args, log_path, HEAP_WORKER) as process:
            yield cls(process, metrics)

    async def snapshot(self) -> dict[str, Any]:
        """Its memory now (the first call's is what later ones are compared with)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{SNAPSHOT}\n".encode())
        await self.process.stdin.drain()
        while line := (await self.process.stdout.readline()).decode():
            if line.startswith(SNAPSHOT + " "):
                figures: dict[str, Any] = json.loads(line.removeprefix(SNAPSHOT + " "))
                return figures
        raise BenchError("the heap worker exited; see its log in the state folder")


def heap_growth(
    before: dict[str, Any] | None, after: dict[str, Any] | None, cached: int
) -> dict[str, Any] | None:
    """KiB per cached workflow between two snapshots: resident set and malloc's bytes in use
    (both less what tracemalloc itself grew), Python's traced heap, and the allocation sites
    that grew most."""
    if before is None or after is None or cached <= 0:
        return None

    tracer = after["tracer"] - before["tracer"]

    def per(name: str, less: int = 0) -> float | None:
        if before[name] is None or after[name] is None:
            return None
        return round((after[name] - before[name] - less) / 1024 / cached, 1)

    return {
        "cached_workflows": cached,
        "rss_kib": per("rss", tracer),
        "malloc_kib": per("malloc", tracer),
        "python_heap_kib": per("traced"),
        "tracemalloc_kib": round(tracer / 1024 / cached, 1),
        "sites": [
            {
                "site": site["site"],
                "kib": round(site["bytes"] / 1024 / cached, 2),
                "objects": round(site["objects"] / cached, 1),
            }
            for site in after["sites"]
        ],
    }


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
