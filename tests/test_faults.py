"""Faults survived, and one role scaled out on one machine (issue 9, items 2 and 3).

One `chronic dev up` stack (a subprocess on free ports, as in production: five worker
processes, Temporal on its database file, Postgres, the supervisor restarting what dies)
carries four loads of at least 100 applications each, in file order. The applicants are the
bench's synthetic persons, the experts the bench's simulated experts (they read the offer
table and approve every offer, see :mod:`tests.fixtures.load`). Mid-load:

1. kill -9 of each worker role's process in turn (orchestration, intake, assignment,
   review, notification), each restarted by the supervisor;
2. kill -9 of the Temporal dev server, restarted on the same database file;
3. kill -9 of Postgres, restarted on its data folder;
4. three more `chronic worker assignment` processes beside the stack's own; the histories
   show the offers drawn and answered by all four; one of the three killed -9 under load.

After each load every application must have ended **approved** with its row closed, two
review rows and a benefit; exactly one outbox row per SMS step (``submitted``, ``approved``),
all sent, and one provider call each (a second one only across a notification worker's
death, between the provider's acceptance and the commit); every ``decide`` Update an expert
got a success for recorded in the ``review`` table; no application run left open (a run ends
only once its SMS are delivered: they are ``send_sms`` activities of the run).

Each test prints what it did and what it counted (``-s``), and one summary line in the
``proof`` section of the terminal summary. Marker ``faults``: not in the default run (see
``pyproject.toml``); `make proof` runs them. ``CHRONIC_PROOF_APPLICATIONS`` changes the size
of each load (100 by default; the issue asks for at least 100).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from temporalio.client import Client

from chronic.db import Database
from chronic.settings import Settings
from chronic.temporal_client import data_converter
from tests.fixtures.dev_stack import Stack, dev_up
from tests.fixtures.load import (
    Audit,
    Fault,
    Histories,
    Load,
    audit,
    eventually,
    kill_holding_work,
    kill_part,
    read_histories,
    table_pid,
)
from tests.fixtures.proof import Proof
from workers import ROLES, queues
from workers.runner import pollers

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

APPLICATIONS = int(os.environ.get("CHRONIC_PROOF_APPLICATIONS", "100"))
CONCURRENCY = 25
"""Applications in flight at a time: enough that every role always has work to lose."""
LOAD_BUDGET = 600.0
"""Seconds one load may take (about 3 minutes on this 2-core machine under other load)."""
TEST_BUDGET = 900.0
"""Seconds one test may take, load, faults and audit included."""
EXTRA_ASSIGNMENT_WORKERS = 3


@dataclass
class Rig:
    stack: Stack
    settings: Settings
    client: Client
    db: Database

    def load(self) -> Load:
        policy = self.settings.policy(self.settings.region)
        return Load(self.client, self.db, self.settings, policy, APPLICATIONS, CONCURRENCY)

    @property
    def log(self) -> Path:
        assert self.stack.log is not None
        return self.stack.log


@pytest.fixture(scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    log = tmp_path_factory.mktemp("faults") / "dev-up.log"
    env = {
        # The session's payload key, so this process reads what the stack's workers write.
        "CHRONIC_CODEC_KEYS": os.environ["CHRONIC_CODEC_KEYS"],
        "CHRONIC_CODEC_CURRENT_KEY_ID": os.environ["CHRONIC_CODEC_CURRENT_KEY_ID"],
        # A start that finds Temporal away is the reconciler's within seconds, not minutes.
        "CHRONIC_RECONCILE_INTERVAL_SECONDS": "5",
        "CHRONIC_RECONCILE_MIN_AGE_SECONDS": "10",
    }
    async with dev_up(log, env) as stack:
        settings = Settings(
            _env_file=None,
            state_dir=stack.state,
            postgres_port=stack.postgres_port,
            temporal_default_address=stack.env["CHRONIC_TEMPORAL_DEFAULT_ADDRESS"],
        )
        client = await Client.connect(
            settings.temporal_default_address, data_converter=data_converter(settings)
        )
        db = Database.from_settings(settings)
        try:
            yield Rig(stack, settings, client, db)
        finally:
            await db.dispose()


async def bounded(work: Coroutine[Any, Any, None], what: str) -> None:
    try:
        await asyncio.wait_for(work, TEST_BUDGET)
    except TimeoutError:
        raise AssertionError(f"{what}: not done within {TEST_BUDGET:.0f} s") from None


async def poller_pids(client: Client, role: str) -> set[int]:
    """Pids of the processes polling ``role``'s task queue (identity ``pid@host``)."""
    return {
        int(p.identity.split("@")[0])
        for p in await pollers(client, role)
        if p.identity[:1].isdigit()
    }


async def polling(client: Client, role: str, pid: int) -> None:
    async def seen() -> bool:
        return pid in await poller_pids(client, role)

    await eventually(seen, f"pid {pid} polling the {role} queue", within=90)


@dataclass
class Outcome:
    load: Load
    audit: Audit
    histories: Histories
    elapsed: float


async def run_load(
    rig: Rig, proof: Proof, faults: Callable[[Load], Coroutine[Any, Any, None]]
) -> Outcome:
    """Run a load with ``faults(load)`` beside it; audit and report it; check the load."""
    load = rig.load()
    began = time.monotonic()
    injector = asyncio.create_task(faults(load))
    try:
        batch = await load.run(within=LOAD_BUDGET)
    finally:
        if not injector.done():
            injector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await injector
    elapsed = time.monotonic() - began
    assert load.experts is not None and load.feed is not None
    experts = load.experts.figures
    result = Outcome(
        load,
        await audit(rig.db, rig.client, batch.ids, load.decided, rig.log),
        await read_histories(rig.client, batch.ids),
        elapsed,
    )
    proof.say(
        f"load: {len(batch.ids)} applications in {elapsed:.0f} s, {dict(batch.outcomes)}; "
        f"experts: {load.accepted} accepts, {len(load.decided)} decisions, {experts.refused} "
        f"updates refused or unreachable and sent again, {len(experts.failed)} given up; "
        f"offer reads failed {load.feed.failed_reads}; client retries "
        f"{dict(load.client_retries)}; starts left to the reconciler {len(load.deferred)}, "
        f"adopted after an error {len(load.adopted)}"
    )
    for line in result.audit.lines():
        proof.say(line)
    proof.say(result.histories.line())
    # The load itself: every application ended, approved, and no Update was given up.
    assert not batch.timed_out, f"load unfinished after {LOAD_BUDGET:.0f} s: {batch.outcomes}"
    assert batch.errors == [], batch.errors[:5]
    assert dict(batch.outcomes) == {"approved": APPLICATIONS}
    assert experts.failed == [], experts.failed[:5]
    assert len(load.decided) == 2 * APPLICATIONS
    # What it left behind.
    assert result.audit.problems() == []
    return result


def summary(outcome: Outcome, did: str) -> str:
    a, h = outcome.audit, outcome.histories
    return (
        f"{a.applications} applications, {did}; {outcome.elapsed:.0f} s: "
        f"{a.statuses['approved']} approved and closed, {a.sms_rows} SMS rows "
        f"({a.sms_by_template['submitted']} submitted + {a.sms_by_template['approved']} approved, "
        f"all sent, 1 per step), {a.gateway_sends} provider calls "
        f"({len(a.gateway_repeats)} repeated across a notification death), "
        f"{len(outcome.load.decided)} decisions acknowledged, "
        f"{len(outcome.load.decided) - len(a.lost_decisions)} recorded; activities completed on "
        f"a later attempt {dict(h.retried)}, workflow tasks timed out {h.workflow_task_timeouts}"
    )


def milestone(fraction: float) -> int:
    """The count of finished applications at ``fraction`` of a load."""
    return max(1, int(APPLICATIONS * fraction))


# ---------------------------------------------------------------- 1. each worker role


async def test_kill_9_of_each_worker_role_mid_load_loses_nothing(rig: Rig, proof: Proof) -> None:
    faults: list[Fault] = []

    async def kill_each_role(load: Load) -> None:
        for i, role in enumerate(ROLES):
            await load.reached(milestone(0.08 + 0.14 * i), within=LOAD_BUDGET)
            fault = await kill_part(rig.stack.state, f"worker {role}", load, rig.client)
            assert fault.new_pid is not None
            await polling(rig.client, role, fault.new_pid)
            proof.say(fault.line() + ", polling again")
            faults.append(fault)

    async def check() -> None:
        outcome = await run_load(rig, proof, kill_each_role)
        assert [f.part for f in faults] == [f"worker {role}" for role in ROLES]
        assert all(f.at_finished < APPLICATIONS for f in faults), "a kill came after the load"
        # Each died holding work of the load, which was done again elsewhere or after restart.
        assert all(f.held for f in faults), [f.line() for f in faults]
        kills = ", ".join(
            f"{f.part.removeprefix('worker ')} at {f.at_finished} (holding {len(f.held)})"
            for f in faults
        )
        proof.summary(summary(outcome, f"kill -9 of {kills} finished"))

    await bounded(check(), "the load with every worker role killed")


# ---------------------------------------------------------------- 2. Temporal


async def test_kill_9_of_temporal_mid_load_all_finish(rig: Rig, proof: Proof) -> None:
    faults: list[Fault] = []

    async def kill_temporal(load: Load) -> None:
        await load.reached(milestone(0.4), within=LOAD_BUDGET)
        fault = await kill_part(rig.stack.state, "temporal", load, rig.client)
        proof.say(fault.line() + " (same database file)")
        faults.append(fault)

    async def check() -> None:
        outcome = await run_load(rig, proof, kill_temporal)
        [fault] = faults
        assert fault.at_finished < APPLICATIONS, "the kill came after the load"
        assert fault.new_pid is not None
        database = str(rig.stack.state / "temporal.db")
        assert database in psutil.Process(fault.new_pid).cmdline(), "not on the same database"
        deferred = len(outcome.load.deferred)
        proof.summary(
            summary(
                outcome,
                f"kill -9 of Temporal at {fault.at_finished} finished (back after "
                f"{fault.back_after:.1f} s, {deferred} submissions meanwhile started by the "
                "reconciler)",
            )
        )

    await bounded(check(), "the load with Temporal killed")


# ---------------------------------------------------------------- 3. Postgres


async def test_kill_9_of_postgres_mid_load_activities_retry_all_finish(
    rig: Rig, proof: Proof
) -> None:
    faults: list[Fault] = []

    async def kill_postgres(load: Load) -> None:
        await load.reached(milestone(0.4), within=LOAD_BUDGET)
        fault = await kill_part(rig.stack.state, "postgres", load, rig.client)
        proof.say(fault.line() + " (same data folder)")
        faults.append(fault)

    async def check() -> None:
        outcome = await run_load(rig, proof, kill_postgres)
        [fault] = faults
        assert fault.at_finished < APPLICATIONS, "the kill came after the load"
        assert fault.new_pid is not None
        data = str(rig.stack.state / "postgres")
        assert data in psutil.Process(fault.new_pid).cmdline(), "not on the same data folder"
        assert sum(outcome.histories.retried.values()) > 0, "no activity met the outage"
        proof.summary(
            summary(
                outcome,
                f"kill -9 of Postgres at {fault.at_finished} finished (back after "
                f"{fault.back_after:.1f} s)",
            )
        )

    await bounded(check(), "the load with Postgres killed")


# ---------------------------------------------------------------- 4. scale-out


async def test_assignment_scaled_out_to_four_processes_and_one_killed(
    rig: Rig, proof: Proof, tmp_path: Path
) -> None:
    extras: list[subprocess.Popen[bytes]] = []
    killed: list[Fault] = []

    async def kill_one_extra(load: Load) -> None:
        await load.reached(milestone(0.4), within=LOAD_BUDGET)
        victim = extras[0]
        fault = Fault("extra assignment worker", victim.pid, load.done)
        fault.held = await kill_holding_work(rig.client, load, "assignment", victim.pid)
        fault.at_finished = load.done
        victim.wait()
        killed.append(fault)
        proof.say(fault.line() + "; not restarted")

    async def check() -> None:
        own = table_pid(rig.stack.state, "worker assignment")
        for i in range(EXTRA_ASSIGNMENT_WORKERS):
            log = (tmp_path / f"assignment-{i + 1}.log").open("wb")
            extras.append(
                subprocess.Popen(  # noqa: ASYNC220 - kept to be killed and stopped
                    [sys.executable, "-m", "chronic", "worker", "assignment"],
                    env=rig.stack.env,  # the same settings as the stack's own workers
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        pids = [own] + [p.pid for p in extras]
        for pid in pids:
            await polling(rig.client, "assignment", pid)
        proof.say(f"assignment queue polled by pids {pids} (the stack's own first)")

        outcome = await run_load(rig, proof, kill_one_extra)
        [fault] = killed
        victim, at = fault.pid, fault.at_finished
        assert at < APPLICATIONS, "the kill came after the load"
        assert fault.held, "the extra worker held no activity when it was killed"
        assert outcome.histories.retried[queues.ASSIGNMENT] >= 1
        by_pid: dict[str, Counter[int]] = {}
        for kind in ("draw_expert", "answer_offer"):
            runners = outcome.histories.runners.get(kind, Counter())
            by_pid[kind] = Counter({int(i.split("@")[0]): n for i, n in runners.items()})
            assert set(by_pid[kind]) <= set(pids), f"{kind} ran on {set(by_pid[kind])}"
            proof.say(f"{kind} by pid: {dict(by_pid[kind])}")
        ran = Counter[int]()
        for counts in by_pid.values():
            ran.update(counts)
        assert set(ran) == set(pids), f"assignment work by pid {dict(ran)}; pollers {pids}"
        # Two draws and two acceptances each (a decision ends its offer on the review queue).
        assert outcome.histories.activities[queues.ASSIGNMENT] == 4 * APPLICATIONS
        shares = ", ".join(f"{pid}: {ran[pid]}" for pid in pids)
        proof.summary(
            summary(
                outcome,
                f"assignment on {len(pids)} processes (activities by pid {shares}; the "
                f"stack's own first), the extra pid {victim} killed -9 at {at} finished holding "
                f"{len(fault.held)} activities",
            )
        )

    try:
        await bounded(check(), "the scaled-out load")
    finally:
        for process in extras:
            if process.poll() is None:
                process.terminate()
        for process in extras:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
