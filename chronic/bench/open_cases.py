"""`chronic bench --open N`: N applications waiting for an expert to accept, then closed.

The applications are submitted like any other (:func:`chronic.submission.submit`, bench
persons, two-stage diseases) and nobody answers their offers, so each ends up at the accept
stage with a 24-hour window: a workflow in the orchestration worker's cache (up to its size),
a timer and an offer row. With them open the bench reports:

* the orchestration worker's resident memory before and after, and per cached workflow
  ``(after - before)`` over the runs its cache took in meanwhile (the growth of its
  ``temporal_sticky_cache_size``; without its metrics ``min(N, CHRONIC_WORKFLOW_CACHE_SIZE)``);
  every role's and the server's memory. Python seldom gives memory back, so "before" is best
  taken on a freshly started stack;
* server health: the gRPC health check, ``DescribeNamespace`` and a visibility count of the
  running applications, each timed 10 times; the server's CPU while opening, and idle
  (``--idle-seconds``, 10) before and with the applications open;
* the round trip of an Update with N open: ``accept`` on a random sample of them, one at a
  time, from the client's side (a sampled workflow that left the cache is replayed first,
  which is part of what is measured).

Then every application is closed by the office's Update ``close`` (as `chronic admin close`
does, audited as the operator running the bench): rows closed, CLOSED SMS, nothing left open.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from chronic.actor import operator
from chronic.bench.driver import BenchOptions, machine
from chronic.bench.experts import UpdateFigures
from chronic.bench.figures import spread, worker_label
from chronic.bench.heap_worker import HEAP_QUEUE, HEAP_WORKER, HeapWorker, heap_growth
from chronic.bench.metrics import CACHE_HITS, CACHE_MISSES, CACHE_SIZE, read_totals
from chronic.bench.people import plan_applications
from chronic.bench.processes import CpuMeter, Processes, RssSampler, mib
from chronic.db import Database
from chronic.settings import Settings
from chronic.submission import submit
from models.messages import AcceptOffer, CloseApplication
from workers import queues
from workers.runner import metrics_port
from workflows.application import ApplicationWorkflow

_RUNNING = 'WorkflowType="ApplicationWorkflow" AND ExecutionStatus="Running"'
CLOSE_REASON = "chronic bench --open: load test over"
CLOSE_SECONDS = 120.0
"""How long one application's close may take before the bench reports it and goes on."""
IDLE_SECONDS = 10.0
"""Default of how long the stack's idle CPU is measured, before opening and with the
applications open (after half as long for the workers to settle)."""


async def _timed(call: Any, rounds: int = 10) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


async def server_health(client: Client) -> dict[str, Any]:
    """Latency of the health check, DescribeNamespace and a visibility count (ms)."""
    request = DescribeNamespaceRequest(namespace=client.namespace)
    running = 0

    async def count() -> None:
        nonlocal running
        running = (await client.count_workflows(_RUNNING)).count

    return {
        "check_health_ms": spread(
            await _timed(client.service_client.check_health), scale=1000, digits=1
        ),
        "describe_namespace_ms": spread(
            await _timed(lambda: client.workflow_service.describe_namespace(request)),
            scale=1000,
            digits=1,
        ),
        "count_open_ms": spread(await _timed(count), scale=1000, digits=1),
        "running_applications": running,
    }


async def _pending(db: Database, ids: list[str]) -> dict[str, str]:
    """Application → expert of its pending offer."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT application_id, expert_code FROM offer "
                "WHERE status = 'pending' AND application_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        return {a: e for a, e in rows}


async def _still_open(db: Database, ids: list[str]) -> int:
    async with db.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM application "
                        "WHERE closed_at IS NULL AND id = ANY(:ids)"
                    ),
                    {"ids": ids},
                )
            ).scalar_one()
        )


async def _gated(count: int, concurrency: int, work: Any) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await work(index)

    await asyncio.gather(*(one(i) for i in range(count)))


async def _close_all(
    client: Client, settings: Settings, ids: list[str], concurrency: int
) -> list[str]:
    """Close ``ids`` with the office's Update ``close``, as the operator running the bench,
    and wait for each run to end; what went wrong, one line per application."""
    actor = operator(settings)
    errors: list[str] = []

    async def close_one(index: int) -> None:
        handle = client.get_workflow_handle_for(ApplicationWorkflow.run, ids[index])
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await handle.execute_update(
                    ApplicationWorkflow.close, CloseApplication(actor=actor, reason=CLOSE_REASON)
                )
                await handle.result()  # the run ends once the CLOSED SMS is handed over
        except (WorkflowUpdateFailedError, WorkflowFailureError, RPCError) as error:
            errors.append(f"{ids[index]}: {error}")
        except TimeoutError:
            errors.append(
                f"{ids[index]}: not closed within {CLOSE_SECONDS:.0f} s (its workflow task may "
                f"be failing: `chronic admin close {ids[index]}` ends it)"
            )

    await _gated(len(ids), concurrency, close_one)
    return errors


async def _close_left_over(
    client: Client, settings: Settings, concurrency: int, say: Callable[[str], None]
) -> None:
    """Close what an interrupted ``--heap`` run left open on the heap worker's queue: no
    other worker polls it, and those runs would be counted in this one's cache."""
    query = f'TaskQueue="{HEAP_QUEUE}" AND ExecutionStatus="Running"'
    ids = [execution.id async for execution in client.list_workflows(query)]
    if ids:
        say(f"closing {len(ids)} applications an earlier --heap run left open …")
        for error in (await _close_all(client, settings, ids, concurrency))[:3]:
            say(f"  not closed: {error}")


def _cache_delta(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, int] | None:
    """The orchestration worker's sticky cache between two readings: hits, misses, and the
    runs it took in (``cached``)."""
    if before is None or after is None:
        return None
    return {
        "hits": int(after[CACHE_HITS] - before[CACHE_HITS]),
        "misses": int(after[CACHE_MISSES] - before[CACHE_MISSES]),
        "cached": int(after[CACHE_SIZE] - before[CACHE_SIZE]),
    }


async def run_open(
    settings: Settings,
    options: BenchOptions,
    count: int,
    *,
    client: Client,
    db: Database,
    console: Console,
    update_samples: int = 100,
    idle_seconds: float = IDLE_SECONDS,
    heap: HeapWorker | None = None,
) -> dict[str, Any]:
    """Open ``count`` applications at the accept stage, measure, close them; the figures.

    With a ``heap`` worker (:class:`~chronic.bench.heap_worker.HeapWorker`, running), their
    workflows run there under tracemalloc, and that worker is the one measured, its heap
    broken down.
    """
    say = lambda message: console.print(f"[dim]{message}[/]", highlight=False)  # noqa: E731
    rng = random.Random(options.seed)
    policy = settings.policy(settings.region)
    processes = Processes.of_dev_stack(settings.state_path)
    task_queue, measured = queues.APPLICATIONS, "orchestration"
    if heap is None:
        port = metrics_port("orchestration", settings)
        orchestration_metrics = f"http://{settings.metrics_host}:{port}/metrics" if port else None
    else:
        task_queue, measured = HEAP_QUEUE, HEAP_WORKER
        processes.add(HEAP_WORKER, heap.pid)
        orchestration_metrics = f"http://{heap.metrics}/metrics"
        await _close_left_over(client, settings, options.concurrency, say)
    cache_names = (CACHE_SIZE, CACHE_HITS, CACHE_MISSES)

    async def cache() -> dict[str, float] | None:
        if orchestration_metrics is None:
            return None
        return await read_totals(orchestration_metrics, cache_names)

    problems: list[str] = []
    before = processes.rss()
    cache_before = await cache()
    heap_before = await heap.snapshot() if heap is not None else None
    health_before = await server_health(client)
    say(f"planning {count} applications of bench persons …")
    plans, registered = await plan_applications(db, policy, count, rng=rng)
    ids: list[str] = []
    errors: list[str] = []
    meter = CpuMeter(processes)
    meter.start()
    await asyncio.sleep(idle_seconds)
    idle_before = meter.stop()
    with RssSampler(processes) as rss:
        say(f"submitting {count} applications (concurrency {options.concurrency}) …")
        meter.start()
        began = time.perf_counter()

        async def open_one(index: int) -> None:
            try:
                ids.append(
                    await submit(
                        plans[index].form,
                        client=client,
                        db=db,
                        settings=settings,
                        policy=policy,
                        task_queue=task_queue,
                    )
                )
            except Exception as error:  # reported; the run goes on
                errors.append(f"{type(error).__name__}: {error}")

        await _gated(count, options.concurrency, open_one)
        submitted_s = time.perf_counter() - began
        pending: dict[str, str] = {}
        deadline = time.monotonic() + options.timeout
        while time.monotonic() < deadline:
            pending = await _pending(db, ids)
            if len(pending) >= len(ids):
                break
            await asyncio.sleep(0.5 if count <= 100 else 2.0)
        opening_s = time.perf_counter() - began
        opening_cpu = meter.stop()
        if len(pending) < len(ids):
            problems.append(f"only {len(pending)} of {len(ids)} reached the accept stage in time")
        say(f"{len(pending)} open after {opening_s:.0f} s; letting the workers settle …")
        await asyncio.sleep(idle_seconds / 2)
        meter.start()
        await asyncio.sleep(idle_seconds)
        idle_cpu = meter.stop()
        after = rss.sample()
        heap_open = await heap.snapshot() if heap is not None else None
        health_open = await server_health(client)
        cache_open = await cache()
        opened = _cache_delta(cache_before, cache_open)
        # Without the worker's metrics: as many as its cache can hold.
        held = opened["cached"] if opened else min(len(pending), settings.workflow_cache_size)
        grown = after.get(measured, 0) - before.get(measured, 0)
        say(
            f"{worker_label(measured)} {mib(before.get(measured, 0)):.0f} → "
            f"{mib(after.get(measured, 0)):.0f} MiB with {len(pending)} open"
            + (f", {grown / 1024 / held:.0f} KiB per cached workflow" if held > 0 else "")
        )

        say(f"timing accept on {min(update_samples, len(pending))} of them, one at a time …")
        updates = UpdateFigures()
        sample = rng.sample(sorted(pending), min(update_samples, len(pending)))
        for application_id in sample:
            handle = client.get_workflow_handle_for(ApplicationWorkflow.run, application_id)
            started = time.perf_counter()
            try:
                await handle.execute_update(
                    ApplicationWorkflow.accept, AcceptOffer(expert=pending[application_id])
                )
            except (WorkflowUpdateFailedError, RPCError) as error:
                updates.refused += 1
                updates.failed.append(f"{application_id}: {error}")
                continue
            updates.round_trips.setdefault("accept", []).append(time.perf_counter() - started)
        cache_sampled = await cache()

        say(f"closing {len(ids)} applications …")
        close_began = time.perf_counter()
        close_errors = await _close_all(client, settings, ids, options.concurrency)
        closing_s = time.perf_counter() - close_began
    left_open = await _still_open(db, ids)
    if left_open:
        problems.append(f"{left_open} applications still open after closing")
    problems += errors[:3] + close_errors[:3] + updates.failed[:3]
    return {
        "kind": "open",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "settings": {"open": count, "concurrency": options.concurrency, "region": policy.region},
        "open": {
            "requested": count,
            "submitted": len(ids),
            "open": len(pending),
            "submitting_s": round(submitted_s, 1),
            "opening_s": round(opening_s, 1),
            "workflow_cache_size": settings.workflow_cache_size,
            "cached_workflows": None if cache_open is None else int(cache_open[CACHE_SIZE]),
            "sampled_updates_cache": _cache_delta(cache_open, cache_sampled),
            "measured_worker": measured,
            "orchestration_rss_mib": {
                "before": mib(before.get(measured, 0)),
                "after": mib(after.get(measured, 0)),
            },
            "heap": heap_growth(heap_before, heap_open, held),
            "kib_per_cached_workflow": round(grown / 1024 / held, 1) if held > 0 else None,
            "update_round_trip_ms": spread(updates.all_round_trips(), scale=1000, digits=1),
            "updates_refused": updates.refused,
            "server_health_before": health_before,
            "server_health": health_open,
            "cpu_percent_opening": opening_cpu,
            "cpu_percent_idle": idle_cpu,
            "cpu_percent_idle_before": idle_before,
            "closed": len(ids) - left_open,
            "closing_s": round(closing_s, 1),
            "application_ids_sample": ids[:20],
        },
        "rss_mib": {
            name: {
                "before": mib(before.get(name, 0)),
                "end": mib(after.get(name, 0)),
                "peak": mib(peak),
            }
            for name, peak in rss.peak.items()
        },
        "bench_persons_registered": registered,
        "problems": problems,
    }
