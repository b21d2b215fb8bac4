"""`chronic dev up`: the embedded stack in the foreground, stopped in order by Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import sqlalchemy as sa
import typer
from rich.console import Console
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from chronic import migrate
from chronic.codec_server import codec_token
from chronic.db import Database
from chronic.embedded.postgres import EmbeddedPostgres
from chronic.embedded.temporal import DevServer
from chronic.seed import seed_world
from chronic.settings import get_settings
from models.tables import Expert
from workers import ROLES
from workers.runner import role_module

app = typer.Typer(no_args_is_help=True, help="Run the embedded development stack.")
console = Console()


def _process_table() -> Path:
    """Where a running `dev up` records its own pid and its children's, for down / status."""
    return get_settings().state_path / "dev.json"


def _record(
    children: dict[str, subprocess.Popen[bytes]],
    workers: dict[str, asyncio.subprocess.Process],
) -> None:
    table = {
        "supervisor": os.getpid(),
        **{name: c.pid for name, c in children.items()},
        **{(f"worker {name}" if name in ROLES else name): w.pid for name, w in workers.items()},
    }
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
    ports = [temporal.port, temporal.ui_port, settings.codec_server_port]
    if settings.uses_embedded_postgres:
        ports.insert(0, postgres.port)
    busy = [p for p in ports if _port_in_use(p)]
    if busy:
        console.print(
            f"[red]Port(s) {', '.join(map(str, busy))} already in use.[/] Stop what uses them "
            "(`chronic dev down` if it is an earlier stack) or choose other ports with "
            "CHRONIC_POSTGRES_PORT / CHRONIC_TEMPORAL_DEFAULT_ADDRESS / CHRONIC_TEMPORAL_UI_PORT / "
            "CHRONIC_CODEC_SERVER_PORT."
        )
        return 2
    children: dict[str, subprocess.Popen[bytes]] = {}
    workers: dict[str, asyncio.subprocess.Process] = {}
    streams: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if settings.uses_embedded_postgres:
            with (state / "postgres.log").open("ab") as pg_log:
                children["postgres"] = postgres.start(
                    stdout=pg_log, stderr=subprocess.STDOUT, start_new_session=True
                )
            _record(children, workers)
            await postgres.wait_ready()
            await postgres.ensure_database(settings.database_name)
            console.print(f"[green]postgres[/] ready on 127.0.0.1:{postgres.port}")
        url = settings.resolved_database_url()
        await migrate.check_reachable(url)
        await migrate.upgrade(url)
        console.print(f"[green]schema[/] at revision {await migrate.current(url)}")
        await _seed_on_first_run(url)
        with (state / "temporal.log").open("ab") as t_log:
            children["temporal"] = subprocess.Popen(  # noqa: ASYNC220 - handle kept to stop it
                temporal.argv(), stdout=t_log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _record(children, workers)
        await _wait_port(temporal.port, 60)
        await _wait_port(temporal.ui_port, 60)
        worker_env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal.address,
            "CHRONIC_STATE_DIR": str(state),
        }
        workers["codec-server"] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chronic",
            "codec-server",
            "--port",
            str(settings.codec_server_port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=worker_env,
            start_new_session=True,
        )
        streams.append(asyncio.create_task(_stream("codec-server", workers["codec-server"])))
        for role in ROLES:
            workers[role] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chronic",
                "worker",
                role,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=worker_env,
                start_new_session=True,
            )
            streams.append(asyncio.create_task(_stream(role, workers[role])))
        _record(children, workers)
        await _wait_for_pollers(temporal.address, workers, within_seconds=60)
        await _wait_port(settings.codec_server_port, 30)
        console.print(
            f"[bold green]ready[/]: Temporal {temporal.address}, UI {temporal.ui_url}, "
            f"{len(ROLES)} workers polling; Ctrl-C or `chronic dev down` stops everything"
        )
        if demo:
            from chronic.demo import run_demo

            demo_task = asyncio.create_task(run_demo(settings, ui_url=temporal.ui_url))
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
        await _stop_workers(workers, settings.worker_shutdown_grace_seconds + 5)
        await asyncio.gather(*streams, return_exceptions=True)  # the last log lines
        for child in reversed(list(children.values())):
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        _process_table().unlink(missing_ok=True)
        console.print("stopped")


async def _seed_on_first_run(url: str) -> None:
    """The demo world is made once; later starts keep whatever the stack changed since."""
    database = Database(url, pool_size=1)
    try:
        async with database.session() as session:
            experts = await session.scalar(sa.select(sa.func.count()).select_from(Expert))
        if experts:
            console.print(f"[green]data[/] kept from the last run ({experts} experts)")
            return
        report = await seed_world(database)
        console.print(f"[green]seeded[/] the demo world ({report.created} rows)")
    finally:
        await database.dispose()


async def _stream(role: str, process: asyncio.subprocess.Process) -> None:
    """Print a worker's output line by line, prefixed with its role."""
    assert process.stdout is not None
    style = _ROLE_STYLES.get(role, "white")
    async for raw in process.stdout:
        line = raw.decode(errors="replace").rstrip()
        if line:
            console.print(f"[{style}]{role:>13}[/] | {line}", markup=True, highlight=False)


async def _wait_for_pollers(
    address: str, workers: dict[str, asyncio.subprocess.Process], within_seconds: float
) -> None:
    """Ready means every role's task queue has a poller (not just a started process)."""
    client = await Client.connect(address)
    deadline = asyncio.get_running_loop().time() + within_seconds
    waiting = set(workers) & set(ROLES)
    while waiting:
        for role in sorted(waiting):
            if workers[role].returncode is not None:
                raise RuntimeError(
                    f"worker {role} exited with code {workers[role].returncode} (see its log lines)"
                )
            if await _has_poller(client, role):
                waiting.discard(role)
        if waiting and asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no poller on the task queue of {', '.join(sorted(waiting))}")
        await asyncio.sleep(0.3)


async def _has_poller(client: Client, role: str) -> bool:
    module = role_module(role)
    kind = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if role == "orchestration"
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=module.TASK_QUEUE),
            task_queue_type=kind,
        )
    )
    return bool(response.pollers)


async def _stop_workers(
    workers: dict[str, asyncio.subprocess.Process], grace_seconds: float
) -> None:
    """SIGTERM every worker at once (they finish in-flight tasks), then wait, then kill."""
    for process in workers.values():
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for role, process in workers.items():
        try:
            await asyncio.wait_for(process.wait(), grace_seconds)
        except TimeoutError:
            console.print(f"[yellow]worker {role} did not stop in {grace_seconds:.0f} s; killed")
            process.kill()
            await process.wait()


_ROLE_STYLES = {
    "orchestration": "magenta",
    "intake": "cyan",
    "assignment": "yellow",
    "review": "green",
    "notification": "blue",
    "codec-server": "red",
}


@app.command()
def up(
    demo: bool = typer.Option(
        False, "--demo", help="Once ready, run `chronic demo` through the stack."
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
