"""The throughput run of `chronic bench`: the whole process beside the bare baseline.

One run, one server, the same concurrency and the same kind of experts for both:

1. **probe** — one application through the whole process; its history (with its SMS
   children) gives the baseline's program (:func:`chronic.bench.history.program_of`): the
   same count of activities and Updates in the same order. It also warms the workers up.
2. **baseline** — ``N`` :class:`~chronic.bench.baseline.BaselineWorkflow` runs on a worker of
   their own (a subprocess), answered by experts who learn of offers from that worker's lines.
3. **full flow** — ``N`` applications submitted like `chronic submit`
   (:func:`chronic.submission.submit`), answered by experts who read the ``offer`` table.

At most ``concurrency`` workflows are in flight in each phase; a new one starts when one ends.
Latency is submit (or start) to result: ``handle.result()``, a long poll on the server, not a
loop of queries. Throughput is completed workflows over the phase's wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableSet, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from temporalio.client import Client, WorkflowFailureError

from chronic.bench.baseline import BaselineInput, BaselineWorkflow
from chronic.bench.baseline_worker import OFFER_LINE, READY_LINE
from chronic.bench.experts import (
    OPINION,
    DatabaseOffers,
    NotedOffers,
    OfferSeen,
    SimulatedExperts,
    UpdateFigures,
)
from chronic.bench.figures import spread
from chronic.bench.history import cost_summary, workflow_cost
from chronic.bench.metrics import means, scrape
from chronic.bench.people import plan_applications
from chronic.bench.processes import CpuMeter, Processes, RssSampler, mib
from chronic.db import Database
from chronic.demo import PlannedApplication
from chronic.settings import Settings
from chronic.submission import submit
from models.messages import AcceptOffer, Decide
from models.policy import PolicyProfile
from workers import ROLES
from workers.runner import metrics_port
from workflows.application import ApplicationWorkflow

FEED_DESCRIPTION = (
    "experts poll the business database's offer table (one indexed query per interval for "
    "all applications in flight); the baseline's experts drain an in-memory list filled by "
    "its offer activity, at the same interval; neither queries a workflow"
)


@dataclass(frozen=True)
class BenchOptions:
    applications: int = 200
    concurrency: int = 20
    poll_interval: float = 0.05
    """Seconds between two looks of the simulated experts at their offers."""
    sample: int = 20
    """Histories fetched per flow for events and payload sizes."""
    timeout: float = 1800.0
    """Seconds a phase may take before the bench stops waiting."""
    seed: int | None = None
    sweep: tuple[int, ...] = ()
    """Concurrencies to run one after the other (each a baseline and a full flow of
    ``applications``); empty: ``concurrency`` alone."""

    @property
    def levels(self) -> tuple[int, ...]:
        return self.sweep or (self.concurrency,)


class BenchError(Exception):
    """The bench could not run (the probe failed, the baseline worker did not start …)."""


@dataclass
class Batch:
    """One phase: what was started, how each ended and how long it took."""

    ids: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    timed_out: bool = False

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0


async def run_batch(
    count: int,
    concurrency: int,
    *,
    start: Callable[[int], Awaitable[str]],
    finish: Callable[[str], Awaitable[str]],
    watched: MutableSet[str],
    within: float,
) -> Batch:
    """Start ``count`` workflows, at most ``concurrency`` in flight, and wait for each result.

    ``start(i)`` returns the workflow ID, ``finish(id)`` waits for the result and names the
    outcome; IDs in flight are in ``watched`` (what the database feed looks at).
    """
    batch = Batch()
    gate = asyncio.Semaphore(concurrency)
    began = time.perf_counter()

    async def one(index: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                workflow_id = await start(index)
            except Exception as error:  # counted and reported; the run goes on
                batch.outcomes["not started"] += 1
                batch.errors.append(f"start {index}: {type(error).__name__}: {error}")
                return
            batch.ids.append(workflow_id)
            watched.add(workflow_id)
            try:
                outcome = await finish(workflow_id)
            except WorkflowFailureError as error:
                batch.outcomes["failed"] += 1
                batch.errors.append(f"{workflow_id} failed: {error.cause or error}")
                return
            finally:
                watched.discard(workflow_id)
            batch.latencies.append(time.perf_counter() - started)
            batch.outcomes[outcome] += 1

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=within)
    batch.elapsed = time.perf_counter() - began
    if pending:
        batch.timed_out = True
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        batch.outcomes["unfinished"] += len(pending)
    for task in done:
        task.result()
    return batch


@asynccontextmanager
async def answering(experts: SimulatedExperts) -> AsyncIterator[SimulatedExperts]:
    """The experts answer offers while the block runs."""
    task = asyncio.create_task(experts.run())
    try:
        yield experts
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def bench_process(
    module: str, args: list[str], log_path: Path, what: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m module *args`` as a subprocess of the bench, once it has written its
    ``ready`` line; stopped (SIGTERM, then SIGKILL) on the way out. Its standard input is a
    pipe from the bench, whose end closes when the bench is gone; its standard error goes to
    ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    assert process.stdout is not None
    stdout = process.stdout

    async def ready() -> None:
        while (line := await stdout.readline()) and line.decode().strip() != READY_LINE:
            pass
        if not line:
            raise BenchError(f"the {what} exited before polling; see {log_path}")

    try:
        try:
            await asyncio.wait_for(ready(), 60)
        except TimeoutError:
            raise BenchError(f"the {what} did not poll within 60 s; see {log_path}") from None
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


@asynccontextmanager
async def baseline_worker(
    task_queue: str, feed: NotedOffers, log_path: Path, metrics: str
) -> AsyncIterator[int]:
    """The baseline's worker as a subprocess, its offer lines noted in ``feed``; its pid.

    ``metrics`` is the host:port where it serves its SDK metrics, as the roles' workers do.
    """
    async with bench_process(
        "chronic.bench.baseline_worker", [task_queue, metrics], log_path, "baseline worker"
    ) as process:
        assert process.stdout is not None
        stdout = process.stdout

        async def read() -> None:
            while line := await stdout.readline():
                text = line.decode()
                if text.startswith(OFFER_LINE):
                    note = json.loads(text.removeprefix(OFFER_LINE))
                    feed.note(OfferSeen(note["workflow_id"], note["seq"], note["expert"]))

        reader = asyncio.create_task(read())
        try:
            yield process.pid
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def _update_figures(figures: UpdateFigures) -> dict[str, Any]:
    return {
        "count": len(figures.all_round_trips()),
        "round_trip_ms": spread(figures.all_round_trips(), scale=1000, digits=1),
        "by_update_ms": {
            name: spread(times, scale=1000, digits=1) for name, times in figures.round_trips.items()
        },
        "refused": figures.refused,
        "failed": figures.failed[:10],
    }


def _batch_figures(batch: Batch) -> dict[str, Any]:
    return {
        "count": len(batch.ids) + batch.outcomes["not started"],
        "completed": batch.completed,
        "outcomes": dict(batch.outcomes),
        "elapsed_s": round(batch.elapsed, 2),
        "per_second": round(batch.per_second, 3),
        "latency_ms": spread(batch.latencies, scale=1000, digits=0),
        "timed_out": batch.timed_out,
        "errors": batch.errors[:10],
    }


def cpu_per_completed(batch: Batch, cpu_percent: Mapping[str, float]) -> dict[str, float]:
    """CPU milliseconds each process spent per completed workflow, and their ``total``.

    At saturation, what a workflow costs the machine (a 2-core machine's rate is then about
    2,000 ms over the total); at a light load it also holds the stack's idle CPU.
    """
    if not batch.completed:
        return {}
    per = {
        name: round(percent * 10 * batch.elapsed / batch.completed, 1)
        for name, percent in cpu_percent.items()
    }
    return {**per, "total": round(sum(per.values()), 1)}


@dataclass
class Phase:
    """One flow's run at one concurrency: its batch, Updates, CPU and task times."""

    batch: Batch
    updates: UpdateFigures
    cpu: dict[str, float]
    times: dict[str, Any]

    def cpu_ms(self) -> dict[str, float]:
        return cpu_per_completed(self.batch, self.cpu)

    def figures(self) -> dict[str, Any]:
        """The detailed figures (without history costs)."""
        return {
            **_batch_figures(self.batch),
            "updates": _update_figures(self.updates),
            "cpu_percent": self.cpu,
            "cpu_ms_per_workflow": self.cpu_ms(),
            "task_times_ms": self.times,
        }

    def row(self) -> dict[str, Any]:
        """This flow's part of a sweep's line."""
        return {
            "per_second": round(self.batch.per_second, 3),
            "completed": self.batch.completed,
            "latency_ms": spread(self.batch.latencies, scale=1000, digits=0),
            "update_round_trip_ms": spread(self.updates.all_round_trips(), scale=1000, digits=1),
            "cpu_ms_per_workflow": self.cpu_ms().get("total"),
        }


@dataclass
class Level:
    """Both flows run at one concurrency."""

    concurrency: int
    task_queue: str
    """The baseline's task queue at this level."""
    full: Phase
    base: Phase

    @property
    def ratio(self) -> float | None:
        """Full-flow rate over the baseline's, to 3 places."""
        full, base = self.full.batch.per_second, self.base.batch.per_second
        return round(full / base, 3) if base else None

    def cpu_ratio(self) -> float | None:
        """Baseline CPU per workflow over the full flow's per application."""
        full, base = self.full.cpu_ms().get("total"), self.base.cpu_ms().get("total")
        return round(base / full, 3) if full and base else None

    def row(self) -> dict[str, Any]:
        """One line of a sweep."""
        return {
            "concurrency": self.concurrency,
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio(),
            "full_flow": self.full.row(),
            "baseline": self.base.row(),
        }


def half_load(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The saturating load (the highest full-flow rate of the sweep) and the level whose rate
    is nearest half of it, with its Update round trip: the figures of issue 9's latency
    target. None with fewer than two levels."""
    if len(rows) < 2:
        return None
    top = max(rows, key=lambda row: row["full_flow"]["per_second"])
    saturating = top["full_flow"]["per_second"]
    half = min(rows, key=lambda row: abs(row["full_flow"]["per_second"] - saturating / 2))
    return {
        "saturating_per_second": saturating,
        "saturating_concurrency": top["concurrency"],
        "concurrency": half["concurrency"],
        "per_second": half["full_flow"]["per_second"],
        "share_of_saturation": round(half["full_flow"]["per_second"] / saturating, 2)
        if saturating
        else None,
        "update_round_trip_ms": half["full_flow"]["update_round_trip_ms"],
    }


class _Bench:
    def __init__(
        self,
        settings: Settings,
        options: BenchOptions,
        client: Client,
        db: Database,
        console: Console,
    ) -> None:
        self.settings = settings
        self.options = options
        self.client = client
        self.db = db
        self.console = console
        self.policy: PolicyProfile = settings.policy(settings.region)
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
        self.processes = Processes.of_dev_stack(settings.state_path)
        self.processes.add("bench", os.getpid())
        self.baseline_metrics = f"{settings.metrics_host}:{free_port()}"
        self.endpoints = {
            role: f"http://{settings.metrics_host}:{port}/metrics"
            for role in ROLES
            if (port := metrics_port(role, settings)) is not None
        }
        self.endpoints["baseline worker"] = f"http://{self.baseline_metrics}/metrics"

    def say(self, message: str) -> None:
        self.console.print(f"[dim]{message}[/]", highlight=False)

    # -- the full flow --

    def real_experts(self, watched: MutableSet[str]) -> SimulatedExperts:
        client = self.client

        async def accept(offer: OfferSeen) -> object:
            handle = client.get_workflow_handle_for(ApplicationWorkflow.run, offer.workflow_id)
            # One Update ID per offer and action: a resend after a lost answer is the same
            # Update, not a second accept refused as "already accepted".
            return await handle.execute_update(
                ApplicationWorkflow.accept,
                AcceptOffer(expert=offer.expert),
                id=f"{offer.workflow_id}:accept:{offer.seq}",
            )

        async def decide(offer: OfferSeen) -> object:
            handle = client.get_workflow_handle_for(ApplicationWorkflow.run, offer.workflow_id)
            return await handle.execute_update(
                ApplicationWorkflow.decide,
                Decide(expert=offer.expert, approve=True, opinion=OPINION),
                id=f"{offer.workflow_id}:decide:{offer.seq}",
            )

        return SimulatedExperts(
            DatabaseOffers(self.db, watched),
            accept=accept,
            decide=decide,
            interval=self.options.poll_interval,
        )

    async def full_flow(
        self, plans: list[PlannedApplication], concurrency: int
    ) -> tuple[Batch, UpdateFigures]:
        watched: set[str] = set()

        async def start(index: int) -> str:
            return await submit(
                plans[index].form,
                client=self.client,
                db=self.db,
                settings=self.settings,
                policy=self.policy,
            )

        async def finish(application_id: str) -> str:
            handle = self.client.get_workflow_handle_for(ApplicationWorkflow.run, application_id)
            return str((await handle.result()).status)

        async with answering(self.real_experts(watched)) as experts:
            batch = await run_batch(
                len(plans),
                concurrency,
                start=start,
                finish=finish,
                watched=watched,
                within=self.options.timeout,
            )
        return batch, experts.figures

    # -- the baseline --

    async def baseline(
        self, program: str, task_queue: str, feed: NotedOffers, concurrency: int
    ) -> tuple[Batch, UpdateFigures]:
        client = self.client

        async def start(index: int) -> str:
            handle = await client.start_workflow(
                BaselineWorkflow.run,
                BaselineInput(program=program, expert=f"E{index % 997:03d}"),
                id=f"bench-baseline-{self.run_id}-{index:05d}",
                task_queue=task_queue,
            )
            return handle.id

        async def finish(workflow_id: str) -> str:
            await client.get_workflow_handle_for(BaselineWorkflow.run, workflow_id).result()
            return "completed"

        async def accept(offer: OfferSeen) -> object:
            handle = client.get_workflow_handle_for(BaselineWorkflow.run, offer.workflow_id)
            return await handle.execute_update(
                BaselineWorkflow.accept, AcceptOffer(expert=offer.expert)
            )

        async def decide(offer: OfferSeen) -> object:
            handle = client.get_workflow_handle_for(BaselineWorkflow.run, offer.workflow_id)
            approve = Decide(expert=offer.expert, approve=True, opinion=OPINION)
            return await handle.execute_update(BaselineWorkflow.decide, approve)

        experts = SimulatedExperts(
            feed, accept=accept, decide=decide, interval=self.options.poll_interval
        )
        async with answering(experts):
            batch = await run_batch(
                self.options.applications,
                concurrency,
                start=start,
                finish=finish,
                watched=set(),
                within=self.options.timeout,
            )
        return batch, experts.figures

    # -- the run --

    async def level(self, concurrency: int, plans: list[PlannedApplication], program: str) -> Level:
        """The baseline, then the full flow, at ``concurrency``; CPU and task times of each."""
        n = self.options.applications
        task_queue = f"bench-baseline-{self.run_id}-c{concurrency}"
        feed = NotedOffers()
        log_path = self.settings.state_path / "bench-baseline-worker.log"
        meter = CpuMeter(self.processes)
        async with baseline_worker(task_queue, feed, log_path, self.baseline_metrics) as pid:
            self.processes.add("baseline worker", pid)
            self.say(f"baseline: {n} workflows, {concurrency} in flight …")
            meter.start()
            before = await scrape(self.endpoints)
            base, base_updates = await self.baseline(program, task_queue, feed, concurrency)
            times = means(before, await scrape(self.endpoints))
            base_phase = Phase(base, base_updates, cpu=meter.stop(), times=times)
        self.say(f"full flow: {n} applications, {concurrency} in flight …")
        meter.start()
        before = await scrape(self.endpoints)
        full, full_updates = await self.full_flow(plans, concurrency)
        times = means(before, await scrape(self.endpoints))
        full_phase = Phase(full, full_updates, cpu=meter.stop(), times=times)
        level = Level(concurrency, task_queue, full_phase, base_phase)
        self.say(
            f"  concurrency {concurrency}: full flow {full.per_second:.2f}/s, baseline "
            f"{base.per_second:.2f}/s, ratio {level.ratio or 0:.2f}"
        )
        return level

    async def run(self) -> dict[str, Any]:
        options = self.options
        n = options.applications
        rng = random.Random(options.seed)
        levels = options.levels
        self.say(f"planning {n * len(levels) + 1} applications of bench persons …")
        plans, registered = await plan_applications(
            self.db, self.policy, n * len(levels) + 1, rng=rng
        )
        problems: list[str] = []
        with RssSampler(self.processes) as rss:
            self.say("probe: one application through the whole process …")
            probe, probe_updates = await self.full_flow(plans[:1], 1)
            if probe.outcomes.get("approved") != 1:
                raise BenchError(
                    f"the probe application did not end approved: {dict(probe.outcomes)} "
                    + "; ".join(probe.errors + probe_updates.failed)
                )
            probe_cost, program = await workflow_cost(self.client, probe.ids[0])
            self.say(
                f"probe {probe.ids[0]}: {probe_cost.activities} activities, "
                f"{probe_cost.updates} updates → baseline program {program}"
            )
            done: list[Level] = []
            for index, concurrency in enumerate(levels):
                share = plans[1 + index * n : 1 + (index + 1) * n]
                done.append(await self.level(concurrency, share, program))
        # The detailed figures are those of the saturating level (the only one without a sweep).
        main = max(done, key=lambda level: level.full.batch.per_second)
        full, base = main.full.batch, main.base.batch
        self.say("reading histories …")
        full_cost = await cost_summary(self.client, full.ids or probe.ids, sample=options.sample)
        base_cost = await cost_summary(self.client, base.ids, sample=options.sample)
        for level in done:
            at = f" (concurrency {level.concurrency})" if len(done) > 1 else ""
            for name, batch in (("full flow", level.full.batch), ("baseline", level.base.batch)):
                if batch.completed < n:
                    problems.append(
                        f"{name}{at}: {batch.completed} of {n} completed "
                        f"({dict(batch.outcomes)}); {'; '.join(batch.errors[:3])}"
                    )
            for name, updates in (
                ("full flow", level.full.updates),
                ("baseline", level.base.updates),
            ):
                problems += [f"{name}{at} update given up: {line}" for line in updates.failed[:3]]
        end = rss.processes.rss()
        rows = [level.row() for level in done]
        return {
            "kind": "throughput",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "settings": {
                "applications": n,
                "concurrency": main.concurrency,
                "sweep": list(options.sweep),
                "poll_interval_s": options.poll_interval,
                "history_sample": options.sample,
                "region": self.policy.region,
                "temporal": self.client.service_client.config.target_host,
                "namespace": self.client.namespace,
            },
            "ratio": main.ratio,
            "cpu_ratio": main.cpu_ratio(),
            "full_flow": {
                **main.full.figures(),
                "history": full_cost.as_json(),
                "application_ids": full.ids,
            },
            "baseline": {
                **main.base.figures(),
                "history": base_cost.as_json(),
                "program": program,
                "task_queue": main.task_queue,
                "workflow_ids": base.ids,
            },
            "sweep": rows,
            "half_load": half_load(rows),
            "probe": {
                "application_id": probe.ids[0],
                "latency_ms": spread(probe.latencies, scale=1000, digits=0),
                "activities": probe_cost.activities,
                "updates": probe_cost.updates,
                "events": probe_cost.events,
            },
            "server_cpu_percent": {
                "full_flow": main.full.cpu.get("temporal"),
                "baseline": main.base.cpu.get("temporal"),
            },
            "rss_mib": {
                name: {"end": mib(end[name]) if name in end else None, "peak": mib(peak)}
                for name, peak in rss.peak.items()
            },
            "expert_feed": FEED_DESCRIPTION,
            "bench_persons_registered": registered,
            "problems": problems,
        }


def free_port() -> int:
    """A port free on this machine now (a bench subprocess's metrics)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


async def run_bench(
    settings: Settings,
    options: BenchOptions,
    *,
    client: Client,
    db: Database,
    console: Console,
) -> dict[str, Any]:
    """The throughput run on the running stack; the figures as a JSON-able dict."""
    return await _Bench(settings, options, client, db, console).run()
