"""`chronic dev up` keeps what it started alive, and `dev status` tells the truth about it.

The pure parts (restart policy, exit statuses, status classification) are tested without
processes; the Supervisor itself on `sh -c "exit 3"`; then one real `dev up` stack (output
through a pipe) is shared by the checks in file order: a worker killed, Temporal killed, a
real crash loop (Temporal's port taken by someone else), the log's shape, and `dev down`.
The three kills are proof tests (marker ``proof``, `make proof`, on the stack the bench's
tests used there); `make test` runs the rest on the stack the end-to-end test used.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from chronic.embedded.supervisor import (
    ChildSpec,
    RestartPolicy,
    Supervisor,
    alive,
    classify,
    describe_exit,
)
from tests.fixtures.dev_stack import SharedStack, Stack, read_log

# ---------------------------------------------------------------- the pure parts


def test_backoff_doubles_then_a_crash_loop_gives_up() -> None:
    policy = RestartPolicy(first_delay=1, max_delay=30, healthy_after=30, give_up_after=5)
    strikes, delays = 0, []
    for _ in range(5):
        strikes, delay = policy.after_death(strikes, ran_for=2)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, None]


def test_a_healthy_run_resets_the_backoff_and_the_delay_is_capped() -> None:
    policy = RestartPolicy(first_delay=1, max_delay=5, healthy_after=30, give_up_after=100)
    strikes = 0
    for _ in range(6):
        strikes, delay = policy.after_death(strikes, ran_for=1)
    assert (strikes, delay) == (6, 5)
    assert policy.after_death(strikes, ran_for=31) == (1, 1)


def test_exit_statuses_name_the_signal() -> None:
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(-15) == "signal SIGTERM"
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(0) == "exit code 0"


def _probe(status: str | None, create_time: float = 100.0) -> Callable[[int], Any]:
    return lambda _pid: None if status is None else (status, create_time)


def test_status_tells_running_from_dead_zombie_and_reused_pids() -> None:
    entry = {"pid": 4242, "create_time": 100.0, "state": "running", "restarts": 0}
    assert classify(entry, _probe(psutil.STATUS_SLEEPING)) == "running"
    assert classify(entry, _probe(None)).startswith("dead")
    assert classify(entry, _probe(psutil.STATUS_ZOMBIE)).startswith("dead (zombie")
    assert "another process" in classify(entry, _probe(psutil.STATUS_RUNNING, 555.0))
    assert alive(entry, _probe(psutil.STATUS_RUNNING))
    assert not alive(entry, _probe(psutil.STATUS_ZOMBIE))
    assert not alive(entry, _probe(psutil.STATUS_RUNNING, 555.0))

    restarted = entry | {"restarts": 2, "last_exit": "signal SIGKILL"}
    assert classify(restarted, _probe(psutil.STATUS_SLEEPING)).startswith("running (restarted 2")
    waiting = restarted | {"state": "restarting"}
    assert classify(waiting, _probe(None)) == "restarting (3; last signal SIGKILL)"
    given_up = restarted | {"state": "gave up", "last_exit": "exit code 1", "log": "x.log"}
    assert classify(given_up, _probe(None)).startswith("gave up (last exit code 1")


async def test_supervisor_gives_up_once_and_stops_the_rest(tmp_path: Path) -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        tmp_path / "dev.json",
        say=lines.append,
        on_line=lambda name, line: lines.append(f"{name} | {line}"),
        policy=RestartPolicy(first_delay=0.05, healthy_after=30, give_up_after=3),
    )
    await supervisor.start(ChildSpec("sleeper", ["sleep", "60"], stage=0))
    await supervisor.start(ChildSpec("crasher", ["sh", "-c", "echo boom; exit 3"], stage=1))
    for _ in range(100):
        if supervisor.gave_up("crasher"):
            break
        await asyncio.sleep(0.05)
    table = json.loads((tmp_path / "dev.json").read_text())
    assert table["crasher"]["state"] == "gave up"
    assert table["crasher"]["last_exit"] == "exit code 3"
    assert classify(table["sleeper"]) == "running"
    [given_up] = [line for line in lines if "giving up" in line]
    assert given_up.startswith("giving up on crasher: it died 3 times in a row within ")
    assert given_up.endswith(
        "s, last with exit code 3; see the lines prefixed 'crasher' above, "
        "fix the cause and start `chronic dev up` again"
    )
    assert lines.count("crasher | boom") == 3
    sleeper = table["sleeper"]["pid"]
    await supervisor.stop()
    assert not psutil.pid_exists(sleeper)
    assert not any("sleeper" in line and "died" in line for line in lines)  # no restart


# ---------------------------------------------------------------- one real stack


@pytest.fixture
async def stack(shared_stack: SharedStack) -> Stack:
    """The session's shared stack (the bench and end-to-end tests ran on it first); these
    tests take it apart, in order, the last one with `chronic dev down`."""
    return await shared_stack.get()


def _log(stack: Stack) -> str:
    assert stack.log is not None
    return read_log(stack.log).decode(errors="replace")


def _table(stack: Stack) -> dict[str, Any]:
    table: dict[str, Any] = json.loads((stack.state / "dev.json").read_text())
    return table


async def _eventually(check: Callable[[], Any], what: str, within: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError, KeyError):
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(0.3)


async def _status_line(stack: Stack, name: str) -> str:
    result = await stack.chronic("dev", "status")
    [line] = [line for line in result.stdout.splitlines() if line.startswith(f"{name}  ")]
    return line


def _status_of(line: str) -> tuple[int, str]:
    """(pid, what it says) of a `dev status` line."""
    match = re.search(r" pid (\d+)\s+(.*)$", line)
    assert match, line
    return int(match.group(1)), match.group(2)


async def _client(stack: Stack) -> Client:
    return await Client.connect(stack.env["CHRONIC_TEMPORAL_DEFAULT_ADDRESS"])


async def _poller_pids(client: Client, queue: str) -> set[int]:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return {int(p.identity.split("@")[0]) for p in response.pollers if p.identity[:1].isdigit()}


@pytest.mark.e2e
@pytest.mark.proof
async def test_a_killed_worker_is_reported_and_restarted(stack: Stack) -> None:
    old = _table(stack)["worker intake"]["pid"]
    os.kill(old, signal.SIGKILL)
    await _eventually(
        lambda: f"worker intake (pid {old}) died with signal SIGKILL" in _log(stack),
        "the death and its signal in the log",
    )
    new = await _eventually(
        lambda: (
            (e := _table(stack)["worker intake"])["pid"] != old
            and e["state"] == "running"
            and e["pid"]
        ),
        "a new intake worker",
    )
    client = await _client(stack)
    for _ in range(120):  # the new process polls the intake queue
        if new in await _poller_pids(client, "intake"):
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"no poller of pid {new} on the intake queue")
    pid, says = _status_of(await _status_line(stack, "worker intake"))
    assert (pid, says.split()[0]) == (new, "running"), says
    assert "signal SIGKILL" in says


@pytest.mark.e2e
@pytest.mark.proof
async def test_a_killed_temporal_is_not_running_until_restarted_on_its_database(
    stack: Stack,
) -> None:
    client = await _client(stack)
    await client.start_workflow(
        "KeptAcrossRestarts", id="supervisor-kept", task_queue="nobody-polls-this"
    )
    old = _table(stack)["temporal"]["pid"]
    os.kill(old, signal.SIGKILL)
    pid, says = _status_of(await _status_line(stack, "temporal"))
    assert pid != old or not says.startswith("running"), says  # a dead pid is never "running"
    new = await _eventually(
        lambda: (e := _table(stack)["temporal"])["pid"] != old and e["pid"], "a new Temporal"
    )
    assert f"temporal (pid {old}) died with signal SIGKILL" in _log(stack)

    async def described() -> str:
        for _ in range(120):
            try:
                client = await _client(stack)
                description = await client.get_workflow_handle("supervisor-kept").describe()
                return str(description.workflow_type)
            except Exception:  # not listening yet
                await asyncio.sleep(0.5)
        raise AssertionError("the restarted Temporal does not know the earlier workflow")

    assert await described() == "KeptAcrossRestarts"
    pid, says = _status_of(await _status_line(stack, "temporal"))
    assert (pid, says.split()[0]) == (new, "running"), says


@pytest.mark.e2e
@pytest.mark.proof
async def test_a_crash_loop_gives_up_once_and_the_rest_keeps_running(stack: Stack) -> None:
    """Temporal killed and its port taken by another program: every start fails at once."""
    host, _, port = stack.env["CHRONIC_TEMPORAL_DEFAULT_ADDRESS"].rpartition(":")
    os.kill(_table(stack)["temporal"]["pid"], signal.SIGKILL)
    with await _take_port(host, int(port)):
        await _eventually(
            lambda: _table(stack)["temporal"]["state"] == "gave up", "giving up", within=90
        )
        await asyncio.sleep(2)  # nothing more is said about it
        lines = [line for line in _log(stack).splitlines() if "giving up" in line]
        assert len(lines) == 1, lines
        assert lines[0].startswith("giving up on temporal: it died 5 times"), lines
        assert "temporal.log" in lines[0] and "exit code" in lines[0]
        result = await stack.chronic("dev", "status")
    statuses = {
        line.split(" pid ")[0].strip(): _status_of(line)[1]
        for line in result.stdout.splitlines()
        if " pid " in line
    }
    assert statuses.pop("temporal").startswith("gave up"), result.stdout
    assert len(statuses) == 9, result.stdout  # dev up, Postgres, codec server, hall, 5 workers
    assert all(says.startswith("running") for says in statuses.values()), result.stdout
    # Nothing can use a stack whose Temporal gave up: down it goes (a later test gets a new one).
    await stack.chronic("dev", "down")
    await asyncio.to_thread(stack.process.wait, 60)


async def _take_port(host: str, port: int) -> socket.socket:
    """Listen on ``port`` as soon as the killed process has let go of it."""
    for _ in range(200):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            await asyncio.sleep(0.02)
            continue
        sock.listen()
        return sock
    raise AssertionError(f"port {port} stays taken")


@pytest.mark.e2e
async def test_the_log_through_a_pipe_has_one_line_per_record_and_no_colour(
    stack: Stack,
) -> None:
    text = _log(stack)
    assert "\x1b[" not in text
    [ready] = [line for line in text.splitlines() if line.startswith("ready: ")]
    assert len(ready) > 80 and ready.endswith("stops everything"), ready
    # The hall is one of the supervised parts, its address in the ready line.
    hall = f"http://127.0.0.1:{stack.env['CHRONIC_HALL_PORT']}"
    assert f"hall {hall}, " in ready, ready
    with urllib.request.urlopen(f"{hall}/login", timeout=10) as page:  # noqa: ASYNC210
        assert page.status == 200 and "门诊慢特病网上服务大厅" in page.read().decode()
    long_child_lines = [line for line in text.splitlines() if " | " in line and len(line) > 100]
    assert long_child_lines, text  # e.g. the workers' "polling task queue" lines


@pytest.mark.e2e
async def test_dev_down_stops_everything_without_restarting(stack: Stack) -> None:
    pids = [entry["pid"] for entry in _table(stack).values()]
    restarts_before = _log(stack).count(" restarted (pid")
    await stack.chronic("dev", "down")
    await asyncio.to_thread(stack.process.wait, 60)
    assert stack.process.returncode == 0, _log(stack)[-2000:]
    assert [pid for pid in pids if psutil.pid_exists(pid)] == []
    assert _log(stack).count(" restarted (pid") == restarts_before
    assert not (stack.state / "dev.json").exists()
