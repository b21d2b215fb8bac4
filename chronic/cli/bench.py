"""`chronic bench`: throughput and latency of the whole process on the running stack."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import typer
from rich.console import Console

from chronic.bench.driver import BenchError, BenchOptions, run_bench
from chronic.bench.figures import print_open, print_throughput, write_json
from chronic.bench.heap_worker import HeapWorker
from chronic.bench.open_cases import IDLE_SECONDS, run_open
from chronic.cli.demo import StackMissing, connect_to_stack
from chronic.db import Database
from chronic.demo import DemoPlanError
from chronic.settings import get_settings


def parse_sweep(text: str | None) -> tuple[int, ...]:
    """``"1,2,5"`` → ``(1, 2, 5)``; raises ValueError saying what to write instead."""
    if text is None:
        return ()
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError("write whole numbers separated by commas, e.g. 1,2,5,10") from None
    if len(levels) < 2 or any(not 1 <= level <= 2_000 for level in levels):
        raise ValueError("give at least two concurrencies, each from 1 to 2000, e.g. 1,2,5,10")
    if len(set(levels)) != len(levels):
        raise ValueError("each concurrency once")
    return levels


def bench(
    applications: int = typer.Option(
        200, "--applications", "-n", min=1, max=100_000, help="Applications (and baseline runs)."
    ),
    concurrency: int = typer.Option(
        20, "--concurrency", "-c", min=1, max=2_000, help="Workflows in flight at a time."
    ),
    open_count: int | None = typer.Option(
        None,
        "--open",
        min=1,
        max=100_000,
        help="Instead of the throughput run: open N applications at the accept stage, report "
        "memory, server health and update latency, then close them.",
    ),
    heap: bool = typer.Option(
        False,
        "--heap",
        help="With --open: run those applications' workflows in a worker of the bench's own "
        "under tracemalloc and break down what a cached workflow holds (Python heap by line, "
        "malloc, resident).",
    ),
    json_file: str | None = typer.Option(
        None, "--json", help="Also write every figure to this file (JSON)."
    ),
    poll_interval: float = typer.Option(
        0.05, min=0.005, max=5.0, help="Seconds between two looks of the experts at new offers."
    ),
    sample: int = typer.Option(
        20, min=1, max=1_000, help="Histories read per flow for events and payload sizes."
    ),
    timeout: float = typer.Option(
        1800, min=10, help="Seconds a phase may take before the bench stops waiting."
    ),
    idle_seconds: float = typer.Option(
        IDLE_SECONDS, min=0.5, help="With --open: seconds of idle CPU measured before and after."
    ),
    seed: int | None = typer.Option(None, help="Seed of the planned forms, to repeat a run."),
    sweep: str | None = typer.Option(
        None,
        help="Concurrencies to run one after the other, e.g. 1,2,5,10,20 (instead of "
        "--concurrency): the ratio at each, the saturating load and the Update round trip "
        "at about half of it. N applications and N baseline runs per level.",
    ),
) -> None:
    """Measure the running stack: the whole process beside a bare Temporal baseline.

    Runs against the stack the settings point at (`chronic dev up`, or any Temporal and
    PostgreSQL with the five workers polling) and needs no input. One application first
    (the probe: its history shapes the baseline), then N baseline workflows (the same count
    of activities and Updates, no database, a worker of their own), then N applications
    through intake, initial review, re-review and approval. Simulated experts accept and
    approve each offer as soon as it appears; they learn of offers from the database's offer
    table (the baseline's from its worker), never by querying a workflow. Prints the ratio
    to the baseline first, then latencies, history sizes, CPU and memory per process
    (progress goes to standard error).

    The applicants are synthetic insured persons of the bench (names 压测000001 …),
    registered as needed; their applications stay on record.
    """
    settings = get_settings()
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    if heap and open_count is None:
        errors.print(
            "chronic bench: --heap breaks down the memory of open applications: "
            "use it with --open N, e.g. `chronic bench --open 500 --heap`"
        )
        raise typer.Exit(2)
    try:
        levels = parse_sweep(sweep)
    except ValueError as error:
        errors.print(f"chronic bench: --sweep {sweep!r}: {error}", markup=False)
        raise typer.Exit(2) from None
    options = BenchOptions(
        applications=applications,
        concurrency=concurrency,
        poll_interval=poll_interval,
        sample=sample,
        timeout=timeout,
        seed=seed,
        sweep=levels,
    )
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 120))
    progress = Console(stderr=True, highlight=False)  # stdout starts with the figures

    async def main() -> dict[str, object]:
        client = await connect_to_stack(settings)
        db = Database.from_settings(settings)
        try:
            if open_count is not None:
                worker: AbstractAsyncContextManager[HeapWorker | None] = (
                    HeapWorker.run(settings) if heap else contextlib.nullcontext()
                )
                async with worker as heap_worker:
                    return await run_open(
                        settings,
                        options,
                        open_count,
                        client=client,
                        db=db,
                        console=progress,
                        idle_seconds=idle_seconds,
                        heap=heap_worker,
                    )
            return await run_bench(settings, options, client=client, db=db, console=progress)
        finally:
            await db.dispose()

    try:
        figures = asyncio.run(main())
    except (StackMissing, DemoPlanError, BenchError) as error:
        errors.print(f"chronic bench: {error}", markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        errors.print("chronic bench: interrupted")
        raise typer.Exit(130) from None
    if json_file is not None:
        write_json(figures, Path(json_file))
    if open_count is not None:
        print_open(figures, console)
    else:
        print_throughput(figures, console)
    if json_file is not None:
        console.print(f"figures written to {json_file}")
    if figures.get("problems"):
        raise typer.Exit(1)
