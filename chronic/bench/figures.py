"""The bench's figures: percentiles, the JSON document and the printed report."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float], *, scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """p50, p99 and max of ``values`` times ``scale``, and how many there were."""

    def at(p: float) -> float | None:
        value = percentile(values, p)
        return None if value is None else round(value * scale, digits)

    return {"n": len(values), "p50": at(50), "p99": at(99), "max": at(100)}


def write_json(figures: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def _pair(spread_: Mapping[str, Any] | None, unit: str, digits: int = 1) -> str:
    if not spread_ or not spread_.get("n"):
        return "-"
    return f"{_fmt(spread_['p50'], unit, digits)} / {_fmt(spread_['p99'], unit, digits)}"


def print_throughput(figures: Mapping[str, Any], console: Console) -> None:
    """The throughput run: the ratio first, then one table comparing both flows."""
    full, base = figures["full_flow"], figures["baseline"]
    ratio = figures.get("ratio")
    console.print(
        f"[bold]ratio {_fmt(ratio, '', 2)}[/] — full flow "
        f"[bold]{_fmt(full['per_second'], '', 2)}[/] applications/s vs baseline "
        f"{_fmt(base['per_second'], '', 2)} workflows/s "
        f"({full['completed']}/{full['count']} and {base['completed']}/{base['count']} "
        f"completed, concurrency {figures['settings']['concurrency']}"
        + (", the sweep's saturating level)" if len(figures.get("sweep", [])) > 1 else ")"),
        highlight=False,
    )
    full_cpu_ms = full.get("cpu_ms_per_workflow", {}).get("total")
    base_cpu_ms = base.get("cpu_ms_per_workflow", {}).get("total")
    if full_cpu_ms and base_cpu_ms:
        console.print(
            f"CPU per workflow, all processes: full flow {_fmt(full_cpu_ms, ' ms', 0)}, baseline "
            f"{_fmt(base_cpu_ms, ' ms', 0)} (ratio {_fmt(figures.get('cpu_ratio'), '', 2)}: "
            "the throughput ratio once both saturate the machine)",
            highlight=False,
        )
    _print_sweep(figures, console)
    table = Table(title="chronic bench", title_justify="left")
    table.add_column("figure")
    table.add_column("full flow", justify="right")
    table.add_column("baseline", justify="right")
    rows: list[tuple[str, str, str]] = [
        ("per second", _fmt(full["per_second"], "", 2), _fmt(base["per_second"], "", 2)),
        ("elapsed", _fmt(full["elapsed_s"], " s"), _fmt(base["elapsed_s"], " s")),
        (
            "submit→result p50 / p99",
            _pair(full["latency_ms"], " ms", 0),
            _pair(base["latency_ms"], " ms", 0),
        ),
        (
            "update round trip p50 / p99",
            _pair(full["updates"]["round_trip_ms"], " ms", 0),
            _pair(base["updates"]["round_trip_ms"], " ms", 0),
        ),
        (
            "updates refused (raced the offer) ",
            _fmt(full["updates"]["refused"]),
            _fmt(base["updates"]["refused"]),
        ),
    ]
    fh, bh = full["history"], base["history"]
    rows += [
        ("history events / app", _fmt(fh["events"]), _fmt(bh["events"])),
        ("  of which in children", _fmt(fh["events"] - fh["own_events"]), "-"),
        ("payload bytes / app", _fmt(fh["payload_bytes"], "", 0), _fmt(bh["payload_bytes"], "", 0)),
        ("history bytes / app", _fmt(fh["history_bytes"], "", 0), _fmt(bh["history_bytes"], "", 0)),
        (
            "activities / updates per app",
            f"{_fmt(fh['activities'])} / {_fmt(fh['updates'])}",
            f"{_fmt(bh['activities'])} / {_fmt(bh['updates'])}",
        ),
        ("workflow tasks / app", _fmt(fh["workflow_tasks"]), _fmt(bh["workflow_tasks"])),
    ]
    # Per process: share of one core over the phase, and CPU ms per completed workflow.
    full_cpu, base_cpu = full.get("cpu_percent", {}), base.get("cpu_percent", {})
    full_ms, base_ms = full.get("cpu_ms_per_workflow", {}), base.get("cpu_ms_per_workflow", {})

    def cpu(percent: Mapping[str, float], ms: Mapping[str, float], name: str) -> str:
        if name not in percent and name not in ms:
            return "-"
        return f"{_fmt(percent.get(name), ' %')} · {_fmt(ms.get(name), ' ms', 0)}"

    for name in sorted(set(full_cpu) | set(base_cpu), key=_process_order):
        rows.append(
            (f"CPU {name} (% · per wf)", cpu(full_cpu, full_ms, name), cpu(base_cpu, base_ms, name))
        )
    rows.append(
        (
            "CPU all processes per wf",
            _fmt(full_ms.get("total"), " ms", 0),
            _fmt(base_ms.get("total"), " ms", 0),
        )
    )
    for label, full_value, base_value in rows:
        table.add_row(label, full_value, base_value)
    console.print(table)
    _print_task_times(full.get("task_times_ms", {}), base.get("task_times_ms", {}), console)
    _print_rss(figures.get("rss_mib", {}), console)
    top = fh.get("payload_top", {})
    if top:
        console.print(
            "largest payloads per application: "
            + ", ".join(f"{kind} {size:,} B" for kind, size in top.items()),
            highlight=False,
        )
    for line in figures.get("problems", []):
        console.print(f"[yellow]problem[/] {line}", highlight=False, markup=False)


def _print_sweep(figures: Mapping[str, Any], console: Console) -> None:
    """With ``--sweep``: one row per concurrency, then the Update round trip at half load."""
    rows = figures.get("sweep", [])
    if len(rows) < 2:
        return
    table = Table(
        title="sweep (ms; each level: N baseline runs, then N applications)", title_justify="left"
    )
    for label in (
        "in flight",
        "full / s",
        "base / s",
        "ratio",
        "CPU ms full",
        "CPU ms base",
        "result p50/p99 full",
        "update p50/p99 full",
        "update p50/p99 base",
    ):
        table.add_column(label, justify="right")
    for row in rows:
        full, base = row["full_flow"], row["baseline"]
        table.add_row(
            str(row["concurrency"]),
            _fmt(full["per_second"], "", 2),
            _fmt(base["per_second"], "", 2),
            _fmt(row["ratio"], "", 2),
            _fmt(full["cpu_ms_per_workflow"], "", 0),
            _fmt(base["cpu_ms_per_workflow"], "", 0),
            _pair(full["latency_ms"], "", 0),
            _pair(full["update_round_trip_ms"], "", 0),
            _pair(base["update_round_trip_ms"], "", 0),
        )
    console.print(table)
    half = figures.get("half_load")
    if half:
        console.print(
            f"saturating load {_fmt(half['saturating_per_second'], '', 2)} applications/s "
            f"(concurrency {half['saturating_concurrency']}); nearest half of it: "
            f"{_fmt(half['per_second'], '', 2)}/s at concurrency {half['concurrency']} "
            f"({_fmt(half['share_of_saturation'], '', 2)} of saturation), Update round trip "
            f"p50 / p99 [bold]{_pair(half['update_round_trip_ms'], ' ms', 0)}[/]",
            highlight=False,
        )


_ORDER = ("temporal", "postgres", "orchestration", "intake", "assignment", "review")


def _process_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


_STEPS = (
    ("workflow_task_schedule_to_start", "wf task wait"),
    ("workflow_task_execution", "wf task run"),
    ("respond_workflow_task", "wf task respond"),
    ("activity_schedule_to_start", "activity wait"),
    ("activity_execution", "activity run"),
    ("respond_activity_task", "activity respond"),
)


def _print_task_times(
    full: Mapping[str, Mapping[str, Mapping[str, float]]],
    base: Mapping[str, Mapping[str, Mapping[str, float]]],
    console: Console,
) -> None:
    """Mean ms per task and step, from the workers' metrics (see chronic.bench.metrics)."""
    rows = [(name, times) for name, times in full.items() if name != "baseline worker"]
    rows += [(name, times) for name, times in base.items() if name == "baseline worker"]
    rows = [(name, times) for name, times in rows if times]
    if not rows:
        return
    table = Table(title="where the time goes (mean ms per task)", title_justify="left")
    table.add_column("worker")
    for _, label in _STEPS:
        table.add_column(label, justify="right")
    for name, times in sorted(rows, key=lambda row: _process_order(row[0])):
        table.add_row(
            name, *(_fmt(times.get(step, {}).get("mean_ms"), "", 0) for step, _ in _STEPS)
        )
    console.print(table)


def _print_rss(rss: Mapping[str, Mapping[str, float]], console: Console) -> None:
    if not rss:
        console.print("worker RSS: no dev stack process table (dev.json) in the state folder")
        return
    table = Table(title="resident memory (MiB)", title_justify="left")
    table.add_column("process")
    table.add_column("end", justify="right")
    table.add_column("peak", justify="right")
    for name in sorted(rss, key=_process_order):
        table.add_row(name, _fmt(rss[name].get("end")), _fmt(rss[name].get("peak")))
    console.print(table)


def worker_label(process: str) -> str:
    """``orchestration`` → "orchestration worker"; ``heap worker`` stays as it is."""
    return process if process.endswith("worker") else f"{process} worker"


def _hits_misses(cache: Mapping[str, int] | None) -> str:
    return "-" if not cache else f"{cache['hits']} / {cache['misses']}"


def _print_heap(heap: Mapping[str, Any], console: Console) -> None:
    """``--heap``: where a cached workflow's memory is, per cached workflow."""
    console.print(
        f"per cached workflow ({heap['cached_workflows']} cached): resident "
        f"[bold]{_fmt(heap['rss_kib'], ' KiB')}[/], malloc in use "
        f"{_fmt(heap['malloc_kib'], ' KiB')}, Python heap {_fmt(heap['python_heap_kib'], ' KiB')} "
        f"(malloc's beyond Python's whole heap is native: the SDK core's, at the least; "
        f"tracemalloc's own {_fmt(heap['tracemalloc_kib'], ' KiB')} taken off)",
        highlight=False,
    )
    table = Table(title="Python heap: largest growths by line", title_justify="left")
    table.add_column("KiB / workflow", justify="right")
    table.add_column("objects / workflow", justify="right")
    table.add_column("allocated at")
    for site in heap["sites"]:
        table.add_row(_fmt(site["kib"], digits=2), _fmt(site["objects"]), site["site"])
    console.print(table)


def print_open(figures: Mapping[str, Any], console: Console) -> None:
    """The ``--open N`` run."""
    o = figures["open"]
    console.print(
        f"[bold]{o['open']}[/] of {o['requested']} applications open at the accept stage "
        f"(opened in {_fmt(o['opening_s'], ' s')}); "
        f"{worker_label(o.get('measured_worker', 'orchestration'))} "
        f"[bold]{_fmt(o['orchestration_rss_mib']['after'], ' MiB')}[/] "
        f"(before {_fmt(o['orchestration_rss_mib']['before'], ' MiB')}), "
        f"[bold]{_fmt(o['kib_per_cached_workflow'], ' KiB')}[/] per cached workflow "
        f"(cache {o['workflow_cache_size']})",
        highlight=False,
    )
    table = Table(title=f"with {o['open']} applications open", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    health = o["server_health"]
    rows = [
        ("update round trip p50 / p99 (accept)", _pair(o["update_round_trip_ms"], " ms", 0)),
        ("updates refused", _fmt(o["updates_refused"])),
        ("workflows in the orchestration cache", _fmt(o.get("cached_workflows"))),
        (
            "sampled updates: cache hits / misses",
            _hits_misses(o.get("sampled_updates_cache")),
        ),
        ("gRPC health check p50 / p99", _pair(health["check_health_ms"], " ms", 1)),
        ("describe namespace p50 / p99", _pair(health["describe_namespace_ms"], " ms", 1)),
        ("list running (visibility) p50 / p99", _pair(health["count_open_ms"], " ms", 1)),
        ("server CPU while opening", _fmt(o["cpu_percent_opening"].get("temporal"), " %")),
        (
            "server CPU idle: before / with them open",
            f"{_fmt(o['cpu_percent_idle_before'].get('temporal'), ' %')} / "
            f"{_fmt(o['cpu_percent_idle'].get('temporal'), ' %')}",
        ),
        ("closed afterwards", f"{o['closed']} in {_fmt(o['closing_s'], ' s')}"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    if o.get("heap"):
        _print_heap(o["heap"], console)
    _print_rss(figures.get("rss_mib", {}), console)
    for line in figures.get("problems", []):
        console.print(f"[yellow]problem[/] {line}", highlight=False, markup=False)
