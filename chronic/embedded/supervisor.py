"""Keeps the processes of `chronic dev up` alive: restart with backoff, give up on a crash loop.

A :class:`ChildSpec` says how to start one component (its command line, where its output goes,
its stop signal and stage). The :class:`Supervisor` starts it, notices when it dies, says so
with the exit status, restarts it after a growing delay (:class:`RestartPolicy`) and gives up
on a crash loop with one line. Every change is written to the process table (``dev.json``),
which :func:`classify` reads back for ``chronic dev status``. On :meth:`Supervisor.stop`
nothing is restarted any more and the stages stop in reverse order (workers first).

The decisions (:meth:`RestartPolicy.after_death`, :func:`describe_exit`, :func:`classify`) are
pure functions so they are tested without processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

RUNNING, RESTARTING, GAVE_UP = "running", "restarting", "gave up"


@dataclass(frozen=True)
class RestartPolicy:
    """Delays double from ``first_delay`` up to ``max_delay``; a run of ``healthy_after``
    seconds or more starts the count afresh; ``give_up_after`` deaths in a row without such a
    healthy run is a crash loop."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    healthy_after: float = 30.0
    give_up_after: int = 5

    def after_death(self, strikes: int, ran_for: float) -> tuple[int, float | None]:
        """The new strike count and the delay before the next start (None: give up)."""
        strikes = 1 if ran_for >= self.healthy_after else strikes + 1
        if strikes >= self.give_up_after:
            return strikes, None
        return strikes, min(self.first_delay * 2 ** (strikes - 1), self.max_delay)


def describe_exit(returncode: int) -> str:
    """``exit code 1`` or ``signal SIGKILL`` (asyncio reports a signal as a negative code)."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


@dataclass(frozen=True)
class ChildSpec:
    """One supervised component."""

    name: str
    argv: Sequence[str]
    stage: int  # started in increasing, stopped in decreasing order
    log_file: Path | None = None  # None: the output is handed line by line to ``on_line``
    env: Mapping[str, str] | None = None
    popen: Mapping[str, Any] = field(default_factory=dict)
    stop_signal: signal.Signals = signal.SIGTERM
    stop_grace: float = 30.0
    ready: Callable[[], Awaitable[None]] | None = None  # awaited after the first start


@dataclass
class _Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process
    started_at: float
    create_time: float | None
    state: str = RUNNING
    restarts: int = 0
    strikes: int = 0
    streak_began: float = 0.0
    last_exit: str | None = None
    watcher: asyncio.Task[None] | None = None
    stream: asyncio.Task[None] | None = None

    @property
    def where_logged(self) -> str:
        if self.spec.log_file is not None:
            return str(self.spec.log_file)
        return f"the lines prefixed '{self.spec.name}' above"


class Supervisor:
    def __init__(
        self,
        table: Path,
        say: Callable[[str], None],
        on_line: Callable[[str, str], None],
        policy: RestartPolicy | None = None,
    ) -> None:
        self.table = table
        self.say = say
        self.on_line = on_line
        self.policy = policy or RestartPolicy()
        self.children: dict[str, _Child] = {}
        self._stopping = asyncio.Event()
        self._write_table()

    def gave_up(self, name: str) -> bool:
        child = self.children.get(name)
        return child is not None and child.state == GAVE_UP

    async def start(self, spec: ChildSpec) -> None:
        """Start ``spec`` (and wait until ready when it says how), then watch it."""
        child = _Child(spec, await self._spawn(spec), time.monotonic(), None)
        child.create_time = _create_time(child.process.pid)
        self.children[spec.name] = child
        self._follow(child)
        self._write_table()
        child.watcher = asyncio.create_task(self._watch(child))
        if spec.ready is not None:
            await spec.ready()

    async def stop(self) -> None:
        """No more restarts; stop the stages in reverse order, killing what overstays."""
        self._stopping.set()
        for stage in sorted({c.spec.stage for c in self.children.values()}, reverse=True):
            group = [c for c in self.children.values() if c.spec.stage == stage]
            await asyncio.gather(*(self._stop_one(c) for c in group))
        tasks = [t for c in self.children.values() for t in (c.watcher, c.stream) if t]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop_one(self, child: _Child) -> None:
        process = child.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(child.spec.stop_signal)
        try:
            await asyncio.wait_for(process.wait(), child.spec.stop_grace)
        except TimeoutError:
            self.say(f"{child.spec.name} did not stop in {child.spec.stop_grace:.0f} s; killed")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def _spawn(self, spec: ChildSpec) -> asyncio.subprocess.Process:
        env = dict(spec.env) if spec.env is not None else None
        if spec.log_file is None:
            return await asyncio.create_subprocess_exec(
                *spec.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
                **spec.popen,
            )
        with spec.log_file.open("ab") as log:
            return await asyncio.create_subprocess_exec(
                *spec.argv,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
                **spec.popen,
            )

    def _follow(self, child: _Child) -> None:
        if child.process.stdout is not None:
            child.stream = asyncio.create_task(self._stream(child.spec.name, child.process))

    async def _stream(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.on_line(name, line)

    async def _watch(self, child: _Child) -> None:
        """Wait for the process to end; unless we are stopping, restart it or give up."""
        name = child.spec.name
        while True:
            returncode = await child.process.wait()
            if self._stopping.is_set():
                return
            if child.stream is not None:  # its last lines before the news of its death
                await asyncio.wait([child.stream], timeout=2)
                if self._stopping.is_set():
                    return
            now = time.monotonic()
            ran_for = now - child.started_at
            if ran_for >= self.policy.healthy_after or child.strikes == 0:
                child.streak_began = now
            child.strikes, delay = self.policy.after_death(child.strikes, ran_for)
            child.last_exit = describe_exit(returncode)
            if delay is None:
                child.state = GAVE_UP
                self._write_table()
                self.say(
                    f"giving up on {name}: it died {child.strikes} times in a row within "
                    f"{now - child.streak_began:.0f} s, last with {child.last_exit}; see "
                    f"{child.where_logged}, fix the cause and start `chronic dev up` again"
                )
                return
            child.state = RESTARTING
            self._write_table()
            self.say(
                f"{name} (pid {child.process.pid}) died with {child.last_exit} after "
                f"{ran_for:.0f} s; restarting in {delay:.0f} s"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            try:
                process = await self._spawn(child.spec)
            except OSError as error:  # e.g. the binary vanished: no point in trying again
                child.state = GAVE_UP
                self._write_table()
                self.say(f"giving up on {name}: it could not be started again: {error}")
                return
            child.process, child.started_at = process, time.monotonic()
            child.create_time = _create_time(process.pid)
            child.restarts += 1
            child.state = RUNNING
            self._follow(child)
            self._write_table()
            if self._stopping.is_set():  # stop() began while we were starting it
                await self._stop_one(child)
                return
            self.say(f"{name} restarted (pid {process.pid}, restart {child.restarts})")

    def _write_table(self) -> None:
        table: dict[str, dict[str, Any]] = {
            "supervisor": {
                "pid": os.getpid(),
                "create_time": _create_time(os.getpid()),
                "state": RUNNING,
            }
        }
        for name, child in self.children.items():
            table[name] = {
                "pid": child.process.pid,
                "create_time": child.create_time,
                "state": child.state,
                "restarts": child.restarts,
                "last_exit": child.last_exit,
                "log": child.where_logged,
            }
        temporary = self.table.with_suffix(".tmp")
        temporary.write_text(json.dumps(table, indent=1))
        temporary.replace(self.table)  # `dev status` never reads half a table


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


Probe = Callable[[int], tuple[str, float] | None]


def probe(pid: int) -> tuple[str, float] | None:
    """psutil's status and create time of ``pid``, or None when there is no such process."""
    try:
        process = psutil.Process(pid)
        return process.status(), process.create_time()
    except psutil.ZombieProcess:
        return psutil.STATUS_ZOMBIE, 0.0
    except psutil.Error:
        return None


def alive(entry: Mapping[str, Any], probe: Probe = probe) -> bool:
    """Whether the process recorded in ``entry`` still runs (not a zombie, not a reused pid)."""
    found = probe(int(entry["pid"]))
    if found is None or found[0] == psutil.STATUS_ZOMBIE:
        return False
    recorded = entry.get("create_time")
    return recorded is None or abs(found[1] - float(recorded)) < 0.05


def classify(entry: Mapping[str, Any], probe: Probe = probe) -> str:
    """What `dev status` says of one table entry: running / restarting (n) / dead / gave up."""
    state = entry.get("state", RUNNING)
    last = entry.get("last_exit")
    if state == GAVE_UP:
        return f"gave up (last {last}; log: {entry.get('log')})"
    if state == RESTARTING:
        return f"restarting ({entry.get('restarts', 0) + 1}; last {last})"
    found = probe(int(entry["pid"]))
    if found is None:
        return "dead (the process is gone)"
    if found[0] == psutil.STATUS_ZOMBIE:
        return "dead (zombie: exited, not yet reaped)"
    if not alive(entry, lambda _pid: found):
        return "dead (its pid now belongs to another process)"
    restarts = entry.get("restarts", 0)
    return f"running (restarted {restarts}×, last {last})" if restarts else "running"
