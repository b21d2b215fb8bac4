"""`chronic dev up`: the embedded stack in the foreground, stopped in order by Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil
import typer
from rich.console import Console

from chronic.embedded.postgres import EmbeddedPostgres
from chronic.embedded.temporal import DevServer
from chronic.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Run the embedded development stack.")
console = Console()


def _process_table() -> Path:
    """Where a running `dev up` records its own pid and its children's, for down / status."""
    return get_settings().state_path / "dev.json"


def _record(children: dict[str, subprocess.Popen[bytes]]) -> None:
    table = {"supervisor": os.getpid(), **{name: c.pid for name, c in children.items()}}
    _process_table().write_text(json.dumps(table))


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _wait_port(port: int, within_seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + within_seconds
    while not _port_in_use(port):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {within_seconds:.0f} s")
        await asyncio.sleep(0.2)


async def _up() -> int:
    settings = get_settings()
    state = settings.state_path
    postgres = EmbeddedPostgres(state / "postgres", settings.postgres_port)
    host, _, port = settings.temporal_default_address.rpartition(":")
    temporal = DevServer(
        state / "temporal.db", host=host, port=int(port), ui_port=settings.temporal_ui_port
    )
    busy = [p for p in (postgres.port, temporal.port, temporal.ui_port) if _port_in_use(p)]
    if busy:
        console.print(
            f"[red]Port(s) {', '.join(map(str, busy))} already in use.[/] Stop what uses them "
            "(`chronic dev down` if it is an earlier stack) or choose other ports with "
            "CHRONIC_POSTGRES_PORT / CHRONIC_TEMPORAL_DEFAULT_ADDRESS / CHRONIC_TEMPORAL_UI_PORT."
        )
        return 2
    children: dict[str, subprocess.Popen[bytes]] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with (state / "postgres.log").open("ab") as pg_log:
            children["postgres"] = postgres.start(
                stdout=pg_log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _record(children)
        await postgres.wait_ready()
        await postgres.ensure_database(settings.database_name)
        console.print(f"[green]postgres[/] ready on 127.0.0.1:{postgres.port}")
        with (state / "temporal.log").open("ab") as t_log:
            children["temporal"] = subprocess.Popen(  # noqa: ASYNC220 - handle kept to stop it
                temporal.argv(), stdout=t_log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _record(children)
        await _wait_port(temporal.port, 60)
        await _wait_port(temporal.ui_port, 60)
        console.print(f"[bold green]ready[/]: Temporal on {temporal.address}, UI {temporal.ui_url}")
        await stop.wait()
        return 0
    finally:
        for child in reversed(list(children.values())):
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        _process_table().unlink(missing_ok=True)
        console.print("stopped")


@app.command()
def up() -> None:
    """Start Postgres and the Temporal dev server (UI on :8233) until Ctrl-C."""
    try:
        code = asyncio.run(_up())
    except (TimeoutError, RuntimeError, OSError) as error:
        # The children are already stopped by _up's cleanup; say what failed, no traceback.
        console.print(f"[red]dev up failed:[/] {error}")
        code = 1
    raise typer.Exit(code)


@app.command()
def status() -> None:
    """Say which parts of a `dev up` stack are running."""
    path = _process_table()
    if not path.exists():
        console.print("no dev stack is running (nothing recorded in the state folder)")
        raise typer.Exit(1)
    for name, pid in json.loads(path.read_text()).items():
        state = "[green]running[/]" if psutil.pid_exists(pid) else "[red]gone[/]"
        console.print(f"{name:<12} pid {pid:<8} {state}")


@app.command()
def down() -> None:
    """Stop a `dev up` running in another terminal (it shuts its children down in order)."""
    path = _process_table()
    if not path.exists():
        console.print("no dev stack is running")
        return
    table: dict[str, int] = json.loads(path.read_text())
    supervisor = table.pop("supervisor")
    if psutil.pid_exists(supervisor):
        os.kill(supervisor, signal.SIGTERM)
        console.print(f"asked dev up (pid {supervisor}) to stop")
        return
    # The supervisor died without cleaning up: stop what it left behind.
    for name, pid in table.items():
        if psutil.pid_exists(pid):
            os.kill(pid, signal.SIGTERM)
            console.print(f"stopped leftover {name} (pid {pid})")
    path.unlink(missing_ok=True)
