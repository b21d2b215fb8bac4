"""`chronic bench` on a `chronic dev up` stack: every figure, the outcome, a faithful baseline.

Ten applications and ten baseline runs; the JSON must hold every figure, every application
must end approved, and the baseline must have run, per workflow, exactly the activities and
Updates of a real application (its own and its SMS deliveries'), counted here from the
histories independently of the bench; then ``--open 3``, measured and closed again. Beside
it: the bench's synthetic insured persons (valid, marked, stable) and the split between them
and the demo's seeded register.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psutil
import pytest
from faker.providers.ssn.zh_CN import Provider as ChineseSsnProvider
from sqlmodel import col, select
from stdnum.cn import ric
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from chronic.bench.driver import half_load
from chronic.bench.people import free_bench_people, plan_applications
from chronic.cli.bench import parse_sweep
from chronic.db import Database
from chronic.demo import plan_batch, plan_scenarios
from chronic.seed.world import generate_bench_people, is_bench_name, known_id_number
from models.domain import InsuranceStatus, InsuranceType
from models.policy import load_policy
from models.tables import InsuredPerson
from tests.fixtures.dev_stack import SharedStack, Stack

APPLICATIONS = 10


@pytest.fixture
async def stack(shared_stack: SharedStack) -> Stack:
    """The session's shared `dev up`: the module's two runs (throughput, then --open) leave
    nothing running on it."""
    return await shared_stack.get()


async def _counts(client: Client, workflow_id: str) -> tuple[int, int]:
    """Activities scheduled (with those of child workflows) and Updates accepted."""
    events = list((await client.get_workflow_handle(workflow_id).fetch_history()).events)
    activities = sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events)
    updates = sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in events
    )
    for event in events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            child_activities, child_updates = await _counts(client, child)
            activities += child_activities
            updates += child_updates
    return activities, updates


def _bench(
    stack: Stack, *args: str, out: Path, seconds: float
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`chronic bench ARGS --json OUT` on the stack, as an operator runs it; its figures
    (blocking: run it in a thread)."""
    result = subprocess.run(
        [sys.executable, "-m", "chronic", "bench", *args, "--json", str(out)],
        env=stack.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=seconds,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures: dict[str, Any] = json.loads(out.read_text())
    return result, figures


@pytest.mark.e2e
@pytest.mark.proof
async def test_bench_reports_every_figure_against_a_faithful_baseline(
    stack: Stack, tmp_path: Path
) -> None:
    args = ["--applications", str(APPLICATIONS), "--sweep", "1,5", "--sample", "5"]
    result, figures = await asyncio.to_thread(
        _bench, stack, *args, out=tmp_path / "bench.json", seconds=300
    )
    # The sweep: both flows at each concurrency; the detailed figures are the faster level's.
    sweep = figures["sweep"]
    assert [row["concurrency"] for row in sweep] == [1, 5]
    for row in sweep:
        assert row["full_flow"]["completed"] == row["baseline"]["completed"] == APPLICATIONS
        assert row["full_flow"]["cpu_ms_per_workflow"] > 0
        assert row["full_flow"]["update_round_trip_ms"]["n"] == 4 * APPLICATIONS
    fastest = max(sweep, key=lambda row: row["full_flow"]["per_second"])
    assert figures["settings"]["concurrency"] == fastest["concurrency"]
    assert figures["ratio"] == fastest["ratio"]
    half = figures["half_load"]
    assert half["saturating_per_second"] == fastest["full_flow"]["per_second"]
    assert half["update_round_trip_ms"]["p99"] > 0
    assert "saturating load" in result.stdout
    # The figures start with the ratio; progress lines went to standard error.
    assert result.stdout.splitlines()[0].startswith("ratio ")
    assert "probe" in result.stderr

    full, base = figures["full_flow"], figures["baseline"]
    assert full["count"] == base["count"] == APPLICATIONS
    assert full["completed"] == base["completed"] == APPLICATIONS
    assert full["outcomes"] == {"approved": APPLICATIONS}
    assert len(full["application_ids"]) == len(set(full["application_ids"])) == APPLICATIONS
    assert figures["ratio"] > 0 and full["per_second"] > 0 and base["per_second"] > 0
    assert figures["ratio"] == pytest.approx(full["per_second"] / base["per_second"], rel=0.01)
    for flow in (full, base):
        assert flow["latency_ms"]["n"] == APPLICATIONS
        assert 0 < flow["latency_ms"]["p50"] <= flow["latency_ms"]["p99"]
        # Each workflow: accept and decide on two offers.
        assert flow["updates"]["count"] == 4 * APPLICATIONS and not flow["updates"]["failed"]
        assert (
            0 < flow["updates"]["round_trip_ms"]["p50"] <= flow["updates"]["round_trip_ms"]["p99"]
        )
        history = flow["history"]
        assert history["sampled"] == 5
        assert history["events"] > 0 and history["payload_bytes"] > 0
        assert history["activities"] > 0 and history["updates"] == 4
        assert flow["cpu_percent"]["temporal"] > 0
        cpu_ms = flow["cpu_ms_per_workflow"]
        assert cpu_ms["temporal"] > 0
        assert cpu_ms["total"] == pytest.approx(
            sum(v for k, v in cpu_ms.items() if k != "total"), abs=1
        )
    assert figures["server_cpu_percent"]["full_flow"] > 0
    assert figures["server_cpu_percent"]["baseline"] > 0
    for role in ("orchestration", "intake", "assignment", "review", "notification", "temporal"):
        assert figures["rss_mib"][role]["end"] > 10
    assert figures["rss_mib"]["baseline worker"]["peak"] > 10
    assert "offer table" in figures["expert_feed"]
    assert not figures["problems"]

    # The baseline ran what a real application runs, counted from the histories here.
    client = await Client.connect(stack.env["CHRONIC_TEMPORAL_DEFAULT_ADDRESS"])
    real = {await _counts(client, a) for a in full["application_ids"][:3]}
    baseline = {await _counts(client, w) for w in base["workflow_ids"][:3]}
    assert real == baseline == {(full["history"]["activities"], 4)}
    assert real == {(figures["probe"]["activities"], figures["probe"]["updates"])}
    program = base["program"]
    assert len(program) - program.count("u") - program.count("r") == figures["probe"]["activities"]

    # Nothing of the bench is left running: no baseline workflow, no baseline worker.
    running = await client.count_workflows(
        'WorkflowType="BenchBaseline" AND ExecutionStatus="Running"'
    )
    assert running.count == 0
    queue = base["task_queue"]
    assert not [p for p in psutil.process_iter(["cmdline"]) if queue in (p.info["cmdline"] or [])]


@pytest.mark.e2e
@pytest.mark.proof
async def test_bench_open_measures_waiting_applications_and_closes_them(
    stack: Stack, tmp_path: Path
) -> None:
    """--open: a few applications wait at the accept stage, are measured, then closed."""
    args = ["--open", "3", "--idle-seconds", "1"]
    _, opened = await asyncio.to_thread(
        _bench, stack, *args, out=tmp_path / "open.json", seconds=120
    )
    o = opened["open"]
    assert o["open"] == o["closed"] == 3 and not opened["problems"]
    assert o["orchestration_rss_mib"]["after"] > 10 and o["kib_per_cached_workflow"] is not None
    assert o["cached_workflows"] >= 3 and o["workflow_cache_size"] == 1000
    assert o["update_round_trip_ms"]["n"] == 3 and o["updates_refused"] == 0
    assert o["server_health"]["running_applications"] == 3
    assert o["server_health"]["check_health_ms"]["p50"] > 0
    assert "temporal" in o["cpu_percent_idle"] and "temporal" in o["cpu_percent_opening"]
    client = await Client.connect(stack.env["CHRONIC_TEMPORAL_DEFAULT_ADDRESS"])
    running = await client.count_workflows(
        'WorkflowType="ApplicationWorkflow" AND ExecutionStatus="Running"'
    )
    assert running.count == 0


@pytest.mark.e2e
@pytest.mark.proof
async def test_bench_open_heap_breaks_down_a_worker_of_its_own(
    stack: Stack, tmp_path: Path
) -> None:
    """--open --heap: the applications' workflows run in the bench's heap worker, whose
    memory is broken down by allocation site; nothing is left on its queue."""
    args = ["--open", "4", "--heap", "--idle-seconds", "1"]
    result, opened = await asyncio.to_thread(
        _bench, stack, *args, out=tmp_path / "heap.json", seconds=180
    )
    o = opened["open"]
    assert o["open"] == o["closed"] == 4 and not opened["problems"]
    assert o["measured_worker"] == "heap worker" and o["cached_workflows"] == 4
    heap = o["heap"]
    assert heap["cached_workflows"] == 4 and heap["python_heap_kib"] > 5
    assert heap["rss_kib"] is not None and heap["malloc_kib"] is not None
    sites = [site["site"] for site in heap["sites"]]
    assert any(site.startswith(("temporalio/", "workflows/", "pydantic")) for site in sites)
    assert "Python heap: largest growths by line" in result.stdout
    client = await Client.connect(stack.env["CHRONIC_TEMPORAL_DEFAULT_ADDRESS"])
    left = await client.count_workflows('TaskQueue="bench-heap" AND ExecutionStatus="Running"')
    assert left.count == 0


def test_bench_heap_without_open_says_what_to_do() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chronic", "bench", "--heap"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "use it with --open N" in result.stderr


def test_bench_sweep_names_its_levels_and_finds_half_the_saturating_load() -> None:
    assert parse_sweep("1, 2,5") == (1, 2, 5) and parse_sweep(None) == ()
    for wrong, said in (("2", "at least two"), ("1,x", "whole numbers"), ("0,5", "from 1"),
                        ("2,2", "each concurrency once")):  # fmt: skip
        with pytest.raises(ValueError, match=said):
            parse_sweep(wrong)

    def row(concurrency: int, per_second: float, p99: float) -> dict[str, object]:
        updates = {"n": 4, "p50": p99 / 2, "p99": p99, "max": p99}
        flow = {"per_second": per_second, "update_round_trip_ms": updates}
        return {"concurrency": concurrency, "full_flow": flow}

    rows = [row(1, 0.7, 120), row(2, 1.3, 150), row(5, 2.2, 300), row(10, 2.8, 450)]
    half = half_load(rows)
    assert half is not None
    assert (half["saturating_per_second"], half["saturating_concurrency"]) == (2.8, 10)
    # 1.3/s is nearest 1.4: the round trip at half load is that level's.
    assert (half["concurrency"], half["update_round_trip_ms"]["p99"]) == (2, 150)
    assert half["share_of_saturation"] == 0.46
    assert half_load(rows[:1]) is None


def test_every_place_code_the_generator_draws_gets_an_answer() -> None:
    """stdnum's place lookup raises KeyError for a code without a county (620201, in Faker's
    list): the 10,000 persons of `bench --open 10000` met it. Such a number is refused and
    drawn again, never a crash; every code of the pools gets a yes or a no."""
    body = "620201" + "19800101" + "001"
    assert not known_id_number(body + ric.calc_check_digit(body + "0"))
    for area in ChineseSsnProvider.area_codes:
        body = f"{area}19800101001"
        assert known_id_number(body + ric.calc_check_digit(body + "0")) in (True, False)


def test_bench_people_are_valid_marked_and_stable() -> None:
    people = generate_bench_people(1, 50)
    assert [p.name for p in people[:2]] == ["压测000001", "压测000002"]
    assert all(is_bench_name(p.name) and ric.is_valid(p.id_number) for p in people)
    assert all(p.insurance_type == InsuranceType.RESIDENT for p in people)
    assert all(p.insurance_status == InsuranceStatus.NORMAL for p in people)
    assert len({p.id_number for p in people}) == 50
    # Person 7 is the same whatever the batch it is generated in.
    assert generate_bench_people(7, 1) == people[6:7]


async def test_bench_and_demo_plan_from_separate_people(seeded_database: Database) -> None:
    db = seeded_database
    policy = load_policy("sanmenxia")
    assert await free_bench_people(db, policy) == 0
    plans, created = await plan_applications(db, policy, 12, rng=random.Random(3))
    assert created == 12 and await free_bench_people(db, policy) == 12
    assert all(is_bench_name(p.form.applicant.name) for p in plans)
    assert all(not p.disease.instant_track for p in plans)
    assert len({p.form.applicant.id_number for p in plans}) == 12
    # Asked again for more: only the missing ones are registered, numbered on.
    _, created = await plan_applications(db, policy, 15, rng=random.Random(4))
    assert created == 3
    async with db.session() as session:
        names = set(
            await session.exec(
                select(InsuredPerson.name).where(col(InsuredPerson.name).startswith("压测"))
            )
        )
    assert names == {f"压测{i:06d}" for i in range(1, 16)}
    # The demo keeps to the seeded register.
    demo, _ = await plan_batch(
        db,
        policy,
        plan_scenarios(24),
        rng=random.Random(5),
        today=date.today(),
    )
    assert demo and not any(is_bench_name(p.form.applicant.name) for p in demo)
