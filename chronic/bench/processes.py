"""Memory and CPU of the stack's processes, from the `dev up` process table.

`chronic dev up` records every part it started in ``dev.json`` in the state folder (pid and
start time; see :mod:`chronic.embedded.supervisor`). The bench reads it and, per process,
the resident set size (``VmRSS`` of ``/proc/<pid>/status``) and the CPU seconds (user +
system of ``/proc/<pid>/stat``), through psutil. Without a dev stack (workers started some
other way) these figures are left out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from chronic.embedded.supervisor import alive

SERVER = "temporal"
DATABASE = "postgres"
_WORKER_PREFIX = "worker "


def _cpu_seconds(process: psutil.Process, *, with_children: bool) -> float:
    times = process.cpu_times()
    total = times.user + times.system
    if with_children:
        # Postgres: one backend per connection; ended backends are in children_*.
        total += times.children_user + times.children_system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
    return total


def _rss(process: psutil.Process, *, with_children: bool) -> int:
    rss = int(process.memory_info().rss)
    if with_children:
        for child in process.children(recursive=True):
            try:
                rss += int(child.memory_info().rss)
            except psutil.Error:
                continue
    return rss


@dataclass
class Processes:
    """The processes the bench watches, by name: ``temporal``, ``postgres``, worker roles
    (``orchestration`` …), and whatever the bench adds (its own process, the baseline's
    worker)."""

    processes: dict[str, psutil.Process] = field(default_factory=dict)

    @classmethod
    def of_dev_stack(cls, state: Path) -> Processes:
        """The parts of the `dev up` stack recorded in ``state``/dev.json (none without one)."""
        table_path = state / "dev.json"
        found = cls()
        if not table_path.exists():
            return found
        table: Mapping[str, object] = json.loads(table_path.read_text())
        for name, entry in table.items():
            if not isinstance(entry, dict) or name == "supervisor" or not alive(entry):
                continue
            try:
                process = psutil.Process(int(entry["pid"]))
            except psutil.Error:
                continue
            found.processes[name.removeprefix(_WORKER_PREFIX)] = process
        return found

    def add(self, name: str, pid: int) -> None:
        self.processes[name] = psutil.Process(pid)

    def __contains__(self, name: str) -> bool:
        return name in self.processes

    def rss(self) -> dict[str, int]:
        """Resident bytes per process (Postgres with its backends)."""
        sizes = {}
        for name, process in self.processes.items():
            try:
                sizes[name] = _rss(process, with_children=name == DATABASE)
            except psutil.Error:
                continue
        return sizes

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far per process (Postgres with its backends)."""
        seconds = {}
        for name, process in self.processes.items():
            try:
                seconds[name] = _cpu_seconds(process, with_children=name == DATABASE)
            except psutil.Error:
                continue
        return seconds


@dataclass
class CpuMeter:
    """CPU used by each process between :meth:`start` and :meth:`stop`, as % of one core."""

    processes: Processes
    _start: dict[str, float] = field(default_factory=dict)
    _since: float = 0.0
    percent: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._start = self.processes.cpu()
        self._since = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self._since, 1e-9)
        end = self.processes.cpu()
        self.percent = {
            name: round(100 * (end[name] - before) / wall, 1)
            for name, before in self._start.items()
            if name in end
        }
        return self.percent


@dataclass
class RssSampler:
    """The peak resident size of each process, sampled every ``interval`` seconds."""

    processes: Processes
    interval: float = 1.0
    peak: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def sample(self) -> dict[str, int]:
        now = self.processes.rss()
        for name, size in now.items():
            self.peak[name] = max(self.peak.get(name, 0), size)
        return now

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()


def mib(size: float) -> float:
    return round(size / 2**20, 1)
