"""`chronic dev up`: the embedded stack in the foreground, stopped in order by Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess

import typer
from rich.console import Console

from chronic.embedded.postgres import EmbeddedPostgres
from chronic.embedded.temporal import DevServer
from chronic.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Run the embedded development stack.")
console = Console()


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
    children: list[subprocess.Popen[bytes]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with (state / "postgres.log").open("ab") as pg_log:
            children.append(
                postgres.start(stdout=pg_log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        await postgres.wait_ready()
        await postgres.ensure_database(settings.database_name)
        console.print(f"[green]postgres[/] ready on 127.0.0.1:{postgres.port}")
        with (state / "temporal.log").open("ab") as t_log:
            children.append(
                subprocess.Popen(  # noqa: ASYNC220 - we keep the Popen handle to stop it in order
                    temporal.argv(), stdout=t_log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        await _wait_port(temporal.port, 60)
        await _wait_port(temporal.ui_port, 60)
        console.print(f"[bold green]ready[/]: Temporal on {temporal.address}, UI {temporal.ui_url}")
        await stop.wait()
        return 0
    finally:
        for child in reversed(children):
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        console.print("stopped")


@app.command()
def up() -> None:
    """Start Postgres and the Temporal dev server (UI on :8233) until Ctrl-C."""
    raise typer.Exit(asyncio.run(_up()))
