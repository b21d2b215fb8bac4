"""`chronic dev up`: the embedded stack in the foreground, stopped in order by Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.text import Text
from sqlmodel import col
from temporalio.client import Client

from chronic import migrate, schedules
from chronic.codec_server import codec_token
from chronic.db import Database
from chronic.embedded.postgres import EmbeddedPostgres
from chronic.embedded.supervisor import ChildSpec, RestartPolicy, Supervisor, alive, classify
from chronic.embedded.temporal import DevServer
from chronic.seed import load_references, seed_world
from chronic.settings import Settings, get_settings
from chronic.temporal_client import data_converter
from models.tables import Expert, Hospital
from workers import ROLES
from workers.runner import pollers

app = typer.Typer(no_args_is_help=True, help="Run the embedded development stack.")
# soft_wrap: one line per record even in a file or a pipe (where rich would wrap at 80).
console = Console(soft_wrap=True)


def _process_table() -> Path:
    """Where a running `dev up` records itself and its children, for `dev down` / `dev status`."""
    return get_settings().state_path / "dev.json"


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _wait_port(port: int, within_seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + within_seconds
    while not _port_in_use(port):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {within_seconds:.0f} s")
        await asyncio.sleep(0.2)


def _quiet_env(**extra: str) -> dict[str, str]:
    """The children's environment; without a terminal, no colour codes in their output."""
    env = {**os.environ, **extra}
    if not console.is_terminal:
        env |= {"NO_COLOR": "1", "RUST_LOG_STYLE": "never"}
    return env


async def _up(demo: bool) -> int:
    settings = get_settings()
    state = settings.state_path
    postgres = EmbeddedPostgres(state / "postgres", settings.postgres_port)
    host, _, port = settings.temporal_default_address.rpartition(":")
    codec_url = f"http://127.0.0.1:{settings.codec_server_port}"
    temporal = DevServer(
        state / "temporal.db",
        host=host,
        port=int(port),
        ui_port=settings.temporal_ui_port,
        # The dev UI cannot send a bearer header, so the token travels in the path; the UI
        # listens on loopback only, like the codec server.
        ui_codec_endpoint=f"{codec_url}/{codec_token(settings)}",
    )
    ports = [temporal.port, temporal.ui_port, settings.codec_server_port, settings.hall_port]
    if settings.uses_embedded_postgres:
        ports.insert(0, postgres.port)
    busy = [p for p in ports if _port_in_use(p)]
    if busy:
        console.print(
            f"[red]Port(s) {', '.join(map(str, busy))} already in use.[/] Stop what uses them "
            "(`chronic dev down` if it is an earlier stack) or choose other ports with "
            "CHRONIC_POSTGRES_PORT / CHRONIC_TEMPORAL_DEFAULT_ADDRESS / CHRONIC_TEMPORAL_UI_PORT / "
            "CHRONIC_CODEC_SERVER_PORT / CHRONIC_HALL_PORT."
        )
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(
        _process_table(),
        policy=RestartPolicy(first_delay=settings.dev_restart_delay_seconds),
        say=_say,
        on_line=_child_line,
    )
    try:

        async def temporal_ready() -> None:
            await _wait_port(temporal.port, 60)
            await _wait_port(temporal.ui_port, 60)

        # Temporal needs nothing of Postgres: it starts while the database is made ready.
        # Restarted on the same --db-filename, Temporal keeps its workflows.
        temporal_up = asyncio.create_task(
            supervisor.start(
                ChildSpec(
                    "temporal",
                    temporal.argv(),
                    stage=1,
                    log_file=state / "temporal.log",
                    env=_quiet_env(NO_COLOR="1"),
                    ready=temporal_ready,
                )
            )
        )
        try:
            await _business_database(settings, postgres, supervisor)
            await temporal_up
        finally:
            if not temporal_up.done():  # the database failed: stop waiting for Temporal
                temporal_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await temporal_up
        worker_env = _quiet_env(TEMPORAL_ADDRESS=temporal.address, CHRONIC_STATE_DIR=str(state))
        chronic = [sys.executable, "-m", "chronic"]
        await supervisor.start(
            ChildSpec(
                "codec-server",
                [*chronic, "codec-server", "--port", str(settings.codec_server_port)],
                stage=2,
                env=worker_env,
            )
        )
        hall_url = f"http://{settings.hall_host}:{settings.hall_port}"
        await supervisor.start(
            ChildSpec(
                "hall",
                [*chronic, "hall", "--port", str(settings.hall_port)],
                stage=2,
                env=worker_env,
            )
        )
        for role in ROLES:
            await supervisor.start(
                ChildSpec(
                    f"worker {role}",
                    [*chronic, "worker", role],
                    stage=3,
                    env=worker_env,
                    stop_grace=settings.worker_shutdown_grace_seconds + 5,
                )
            )
        await _wait_for_pollers(temporal.address, supervisor, within_seconds=60)
        await _wait_port(settings.codec_server_port, 30)
        await _wait_port(settings.hall_port, 30)
        # Through the codec, as every client of the product: schedule inputs are payloads too.
        client = await Client.connect(temporal.address, data_converter=data_converter(settings))
        ensured = await schedules.ensure(client, settings.policy(settings.region))
        console.print(f"[green]schedules[/] {', '.join(e.schedule_id for e in ensured)}")
        console.print(
            f"[bold green]ready[/]: Temporal {temporal.address}, UI {temporal.ui_url}, "
            f"hall {hall_url}, "
            f"{len(ROLES)} workers polling; Ctrl-C or `chronic dev down` stops everything"
        )
        if demo:
            from chronic.demo import run_regions

            # Sanmenxia's batch, then a smaller one of Wuhan and of Jilin.
            demo_task = asyncio.create_task(run_regions(settings, ui_url=temporal.ui_url))
            await asyncio.wait(
                [demo_task, asyncio.create_task(stop.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not demo_task.done():
                demo_task.cancel()
            else:
                console.print(f"demo finished; the stack keeps running. UI: {temporal.ui_url}")
        await stop.wait()
        return 0
    finally:
        # Workers first (in-flight activities finish), then codec server, Temporal, Postgres.
        await supervisor.stop()
        _process_table().unlink(missing_ok=True)
        console.print("stopped")


async def _business_database(
    settings: Settings, postgres: EmbeddedPostgres, supervisor: Supervisor
) -> None:
    """The embedded Postgres (unless DATABASE_URL names another), the schema, the demo world."""
    if settings.uses_embedded_postgres:
        postgres.prepare()
        await supervisor.start(
            ChildSpec(
                "postgres",
                postgres.server_argv(),
                stage=0,
                log_file=postgres.log_file,
                popen=postgres.popen_kwargs(),
                stop_signal=signal.SIGINT,  # "fast" shutdown: no waiting for clients
                ready=postgres.wait_ready,
            )
        )
        await postgres.ensure_database(settings.database_name)
        console.print(f"[green]postgres[/] ready on 127.0.0.1:{postgres.port}")
    url = settings.resolved_database_url()
    await migrate.check_reachable(url)
    await migrate.upgrade(url)
    console.print(f"[green]schema[/] at revision {await migrate.current(url)}")
    await _seed_on_first_run(url)


def _say(message: str) -> None:
    console.print(Text(message, style="yellow"))


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _child_line(name: str, line: str) -> None:
    """A child's output line, prefixed with its role; colour codes kept only on a terminal."""
    role = name.removeprefix("worker ")
    body = Text.from_ansi(line) if console.is_terminal else Text(_ANSI.sub("", line))
    prefix = (f"{role:>13}", _ROLE_STYLES.get(role, "white"))
    console.print(Text.assemble(prefix, " | ", body), highlight=False)


async def _seed_on_first_run(url: str) -> None:
    """The demo world is made once per region; later starts keep whatever the stack changed
    since (a stack seeded before a region had its reference file gets that region's rows)."""
    database = Database(url, pool_size=1)
    try:
        async with database.session() as session:
            experts = await session.scalar(sa.select(sa.func.count()).select_from(Expert))
            seeded = set(await session.scalars(sa.select(col(Hospital.region)).distinct()))
        missing = [r.region for r in load_references() if r.region not in seeded]
        if experts and not missing:
            console.print(f"[green]data[/] kept from the last run ({experts} experts)")
            return
        report = await seed_world(database)
        console.print(f"[green]seeded[/] the demo world ({report.created} rows)")
    finally:
        await database.dispose()


async def _wait_for_pollers(address: str, supervisor: Supervisor, within_seconds: float) -> None:
    """Ready means every role's task queue has a poller (not just a started process)."""
    client = await Client.connect(address)
    deadline = asyncio.get_running_loop().time() + within_seconds
    waiting = set(ROLES)
    while waiting:
        for role in sorted(waiting):
            if supervisor.gave_up(f"worker {role}"):
                raise RuntimeError(f"worker {role} keeps dying (see its log lines)")
            if await _has_poller(client, role):
                waiting.discard(role)
        if waiting and asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no poller on the task queue of {', '.join(sorted(waiting))}")
        await asyncio.sleep(0.3)


async def _has_poller(client: Client, role: str) -> bool:
    return bool(await pollers(client, role))


_ROLE_STYLES = {
    "orchestration": "magenta",
    "intake": "cyan",
    "assignment": "yellow",
    "review": "green",
    "notification": "blue",
    "codec-server": "red",
    "hall": "bright_cyan",
}


@app.command()
def up(
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Once ready, run the demo through the stack: Sanmenxia, then Wuhan and Jilin.",
    ),
) -> None:
    """Start Postgres, Temporal + UI (:8233), migrations, the seed and all five workers.

    Runs in the foreground until Ctrl-C (or `chronic dev down`), then stops everything.
    """
    try:
        code = asyncio.run(_up(demo))
    except (TimeoutError, RuntimeError, OSError, migrate.DatabaseUnreachable) as error:
        # The children are already stopped by _up's cleanup; say what failed, no traceback.
        console.print(f"[red]dev up failed:[/] {error}")
        code = 1
    raise typer.Exit(code)


def _read_table() -> dict[str, dict[str, Any]] | None:
    path = _process_table()
    if not path.exists():
        return None
    table: dict[str, Any] = json.loads(path.read_text())
    # A table of an older `dev up` holds bare pids.
    return {name: e if isinstance(e, dict) else {"pid": e} for name, e in table.items()}


@app.command()
def status() -> None:
    """Say, per part of a `dev up` stack: running / restarting (n) / dead / gave up."""
    table = _read_table()
    if table is None:
        console.print("no dev stack is running (nothing recorded in the state folder)")
        raise typer.Exit(1)
    for name, entry in table.items():
        console.print(f"{name:<22} pid {entry['pid']:<8} {classify(entry)}", highlight=False)
    if not alive(table["supervisor"]):
        console.print(
            "dev up itself is gone, so nothing restarts these; `chronic dev down` stops leftovers"
        )


@app.command()
def down() -> None:
    """Stop a `dev up` running in another terminal (it shuts its children down in order)."""
    table = _read_table()
    if table is None:
        console.print("no dev stack is running")
        return
    supervisor = table.pop("supervisor")
    if alive(supervisor):
        os.kill(supervisor["pid"], signal.SIGTERM)
        console.print(f"asked dev up (pid {supervisor['pid']}) to stop")
        return
    # The supervisor died without cleaning up: stop what it left behind (same pid, same start).
    for name, entry in table.items():
        if alive(entry):
            os.kill(entry["pid"], signal.SIGTERM)
            console.print(f"stopped leftover {name} (pid {entry['pid']})")
    _process_table().unlink(missing_ok=True)
