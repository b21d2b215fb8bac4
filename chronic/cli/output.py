"""What the application and expert commands share: consoles, one-line errors, reaching Temporal.

Every command here talks to Temporal (and `submit` to PostgreSQL too). When something is not
there, or refuses an action, the operator sees one plain line saying what and what to do,
never a traceback:

- Temporal not reachable → "cannot reach Temporal at …: connection refused — start it …";
- no application with that ID → "no application APP";
- an update refused by the workflow's validator → the validator's own message;
- an action on a finished application → "application APP is finished (approved): …";
- no worker answering → which worker to start.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from chronic.temporal_client import connect, connect_options
from models import text
from models.messages import Progress
from models.policy import PolicyProfile, load_policy
from workflows.application import ApplicationWorkflow

if TYPE_CHECKING:  # the database layer loads only in the commands that use it
    from chronic.db import Database

# soft_wrap: a line is never broken at the terminal width (scripts grep and `tail -1` them).
console = Console(soft_wrap=True, highlight=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)

ApplicationArg = Annotated[str, typer.Argument(metavar="APP", help="Application ID.")]


def approval(approve: bool, reject: bool) -> bool:
    """True for --approve, False for --reject; a usage error unless exactly one is given."""
    if approve == reject:
        raise typer.BadParameter(
            "give exactly one of --approve or --reject", param_hint="'--approve' / '--reject'"
        )
    return approve


T = TypeVar("T")
Handle = WorkflowHandle[ApplicationWorkflow, Progress]

QUERY_TIMEOUT = timedelta(seconds=15)
"""How long a progress query may wait for the orchestration worker."""
UPDATE_TIMEOUT_SECONDS = 60.0
"""How long an expert or clerk action may wait for the workers to record it."""

_WORKERS_HINT = (
    "start the workers (`chronic worker orchestration`, and intake / assignment / review / "
    "notification) or the whole stack with `chronic dev up`"
)


class CommandFailed(Exception):
    """Raised inside a command's coroutine: print ``message`` on stderr and exit 1."""


def fail(message: str) -> NoReturn:
    """Print ``message`` as one plain line on stderr and exit with status 1."""
    errors.print(message, markup=False)
    raise typer.Exit(1)


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; a :class:`CommandFailed` becomes one line and exit 1."""
    try:
        return asyncio.run(_call(main))
    except CommandFailed as error:
        fail(str(error))
    except ValidationError as error:
        # An option the message types refuse (an empty note, an opinion too long, …): the
        # message fields are named like the options.
        fail(
            "; ".join(
                f"--{'.'.join(str(part) for part in e['loc'])}: {e['msg'].lower()}"
                for e in error.errors(include_url=False, include_input=False)
            )
        )


async def _call(main: Callable[[], Awaitable[T]]) -> T:
    return await main()


def print_problems(title: str, problems: Iterable[tuple[str | None, str]]) -> None:
    """``title`` and one line per problem (``path: message``) on stderr."""
    listed = list(problems)
    errors.print(f"[bold red]{escape(title)}[/] ({_count(len(listed), 'problem')}):")
    for path, message in listed:
        where = f"[bold]{escape(path)}[/]: " if path else ""
        errors.print(f"  [red]✗[/] {where}{escape(message)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---- time -------------------------------------------------------------------------------------


def policy_of(region: str) -> PolicyProfile | None:
    """The region's policy profile, or None when this installation does not ship it."""
    try:
        return load_policy(region)
    except LookupError:
        return None


def office_region() -> str:
    """The region this office runs (``CHRONIC_REGION``)."""
    from chronic.settings import get_settings

    return get_settings().region


def operator_reason(value: str) -> str:
    """An operator's ``--reason``: the free-text rule, and not empty (it goes into the audit
    trail)."""
    problem = text.problem(value, field="--reason", max_length=500)
    if problem is not None:
        raise CommandFailed(problem)
    if not value.strip():
        raise CommandFailed("--reason is empty: say why, it goes into the audit trail")
    return value.strip()


def zone_of(region: str) -> timezone:
    """The region's local time (UTC+8 for every Chinese region)."""
    policy = policy_of(region)
    return timezone(timedelta(hours=policy.timezone_offset_hours if policy else 8))


def local(moment: datetime | None, zone: timezone) -> str:
    """``2026-11-26 14:00`` in the region's local time; ``-`` for no moment."""
    if moment is None:
        return "-"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def disease_label(region: str, code: str) -> str:
    """``DM 糖尿病(有并发症)`` (just the code when the catalogue does not list it)."""
    policy = policy_of(region)
    disease = policy.disease(code) if policy else None
    return f"{code} {disease.name}" if disease else code


# ---- Temporal ---------------------------------------------------------------------------------


async def temporal() -> Client:
    """The configured Temporal client, or :class:`CommandFailed` saying it cannot be reached."""
    target = connect_options().get("target_host", "?")
    try:
        return await connect()
    except RuntimeError as error:
        if not str(error).startswith("Failed client connect"):
            raise
        raise CommandFailed(
            f"cannot reach Temporal at {target}: {_connect_reason(str(error))} — start it with "
            "`chronic dev up`, or point TEMPORAL_ADDRESS at a running server"
        ) from None


def _connect_reason(text: str) -> str:
    lowered = text.lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("dns error", "unknown host"),
        ("failed to lookup address", "unknown host"),
        ("unauthenticated", "not authorised (check the API key / TLS settings)"),
    ):
        if needle in lowered:
            return reason
    detail = text.removeprefix("Failed client connect:").strip()
    return detail[:160]


def handle_of(client: Client, application_id: str) -> Handle:
    return client.get_workflow_handle_for(ApplicationWorkflow.run, application_id)


def _is_not_found(error: RPCError) -> bool:
    return error.status == RPCStatusCode.NOT_FOUND


async def describe(client: Client, application_id: str) -> WorkflowExecutionDescription:
    """The application's workflow as Temporal describes it.

    Raises:
        CommandFailed: no workflow with that ID, or Temporal refused.
    """
    try:
        return await handle_of(client, application_id).describe()
    except RPCError as error:
        if _is_not_found(error):
            raise CommandFailed(f"no application {application_id}") from None
        raise CommandFailed(f"Temporal refused to describe {application_id}: {error}") from None


@asynccontextmanager
async def database() -> AsyncIterator[Database]:
    """The configured database once it answers (else :class:`CommandFailed` saying why),
    disposed when the command is done with it."""
    from chronic import migrate
    from chronic.db import Database

    try:
        await migrate.check_reachable()
    except migrate.DatabaseUnreachable as error:
        raise CommandFailed(str(error)) from None
    db = Database.from_settings()
    try:
        yield db
    finally:
        await db.dispose()


async def progress_of(client: Client, application_id: str) -> Progress:
    """Where the application stands: the workflow's result once it completed, else its query.

    A completed workflow's result is its final Progress, read from history without a worker.

    Raises:
        CommandFailed: no such application, or no worker answered the query.
    """
    handle = handle_of(client, application_id)
    description = await describe(client, application_id)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    try:
        return await handle.query(ApplicationWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise CommandFailed(
                f"no worker answered for {application_id} within "
                f"{QUERY_TIMEOUT.total_seconds():.0f} s: {_WORKERS_HINT}"
            ) from None
        raise CommandFailed(f"could not read the progress of {application_id}: {error}") from None


async def settled_progress(
    client: Client, application_id: str, stale: Callable[[Progress], bool], within: float = 5
) -> Progress | None:
    """The progress once the workflow has moved past the state ``stale`` recognises.

    An update returns as soon as its handler is done; the main loop then takes the next step
    (records, draws the next expert, issues the benefit) a moment later. None when it has not
    moved on within ``within`` seconds (the command then points at `chronic status`).
    """
    deadline = asyncio.get_running_loop().time() + within
    while True:
        progress = await progress_of(client, application_id)
        if not stale(progress):
            return progress
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.2)


def next_line(progress: Progress | None, application_id: str) -> str:
    """``next  <what happens now>`` after an action, from a settled progress."""
    if progress is None:
        return f"  next  being worked out — see `chronic status {application_id}`"
    if progress.finished_at is not None:
        return f"  result  {progress.status} — see `chronic status {application_id}`"
    return f"  next  {escape(progress.waiting_for)}"


async def finished_status(client: Client, application_id: str) -> str:
    """The final application status of a finished workflow (``approved``, ``closed``, …)."""
    handle = handle_of(client, application_id)
    description = await describe(client, application_id)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return str((await handle.result()).status)
    status = description.status
    return status.name.lower() if status is not None else "unknown"


_STALE = re.compile(r"already completed|workflow execution not found|not found", re.IGNORECASE)


async def send_update(
    client: Client,
    application_id: str,
    action: Callable[[WorkflowHandle[ApplicationWorkflow, Progress]], Awaitable[T]],
) -> T:
    """Run an update on the application and turn every refusal into one readable line.

    Raises:
        CommandFailed: the validator refused (its message), the application is unknown or
            finished, or no worker recorded the action in time.
    """

    async def finished(error: RPCError) -> CommandFailed | None:
        if not (_is_not_found(error) or _STALE.search(str(error))):
            return None
        status = await finished_status(client, application_id)
        return CommandFailed(
            f"application {application_id} is finished ({status}): nothing more can be done"
        )

    return await run_update(
        handle_of(client, application_id),
        action,
        subject=f"the action on {application_id}",
        hint=_WORKERS_HINT,
        gone=finished,
    )


H = TypeVar("H", bound=WorkflowHandle)


async def run_update(
    handle: H,
    action: Callable[[H], Awaitable[T]],
    *,
    subject: str,
    hint: str,
    gone: Callable[[RPCError], Awaitable[CommandFailed | None]],
) -> T:
    """Run an Update on any of the product's workflows (application, benefit) and turn every
    refusal into one readable line: the validator's words; ``gone(error)`` for a workflow
    that is not there or has ended (None: Temporal's own words); no worker in time."""
    try:
        return await asyncio.wait_for(action(handle), UPDATE_TIMEOUT_SECONDS)
    except WorkflowUpdateFailedError as error:
        raise CommandFailed(refusal(error)) from None
    except RPCError as error:
        failed = await gone(error)
        raise (failed or CommandFailed(f"Temporal refused {subject}: {error}")) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise CommandFailed(
            f"{subject} was not recorded within {UPDATE_TIMEOUT_SECONDS:.0f} s: {hint}"
        ) from None


def refusal(error: WorkflowUpdateFailedError) -> str:
    """What the workflow said when it refused an update (its validator's or handler's words)."""
    cause = error.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or error)
