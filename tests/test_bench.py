"""`chronic bench` on a `chronic dev up` stack: every figure, the outcome, a faithful baseline.

Ten applications and ten baseline runs; the JSON must hold every figure, every application
must end approved, and the baseline must have run, per workflow, exactly the activities and
Updates of a real application (its own and its SMS deliveries'), counted here from the
histories independently of the bench.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.fixtures.dev_stack import Stack, dev_up

pytestmark = pytest.mark.e2e

APPLICATIONS = 10


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with dev_up(tmp_path / "dev-up.log") as stack:
        yield stack


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


async def test_bench_reports_every_figure_against_a_faithful_baseline(
    stack: Stack, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "chronic", "bench"]
    command += ["--applications", str(APPLICATIONS), "--concurrency", "5"]
    command += ["--sample", "5", "--json", str(out)]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        env=stack.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
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
