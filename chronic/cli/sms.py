"""`chronic sms …`: the SMS outbox for the office's desk — what went out, what failed, resend.

Every SMS is a row of the outbox, written by the notification activity before the provider is
called. A row stays ``failed`` when its delivery could not succeed (an invalid or missing
number, a provider refusal); the reason is in ``last error`` (numbers scrubbed). Once the data
is fixed, ``chronic sms resend`` starts the delivery again under the same dedup key, waits a
little for the outcome and records who resent what in the audit trail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chronic.cli.output import (
    CommandFailed,
    console,
    database,
    local,
    office_region,
    run,
    temporal,
    zone_of,
)
from models.domain import SmsStatus
from models.notifications import SmsRequest

if TYPE_CHECKING:
    from temporalio.client import Client

    from chronic.db import Database
    from models.tables import SmsOutbox

app = typer.Typer(no_args_is_help=True, help="The SMS outbox: list messages, resend failed ones.")

RESEND_ACTION = "sms_resend"
"""The audit action of ``chronic sms resend``."""

_TABLE_WIDTH = 160


@dataclass(frozen=True)
class Resent:
    """What became of one row given to resend."""

    outbox_id: int
    label: str
    outcome: str
    ok: bool


# ---- list -------------------------------------------------------------------------------------


@app.command(name="list")
def list_(
    application: Annotated[
        str | None,
        typer.Argument(metavar="[APP]", help="Only this application's (or filing's) messages."),
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only messages not sent.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 200,
) -> None:
    """SMS of the outbox (newest first): status, attempts, last error; the recipient masked."""

    async def main() -> list[SmsOutbox]:
        from sqlmodel import col, select

        from models.tables import SmsOutbox

        query = select(SmsOutbox).order_by(col(SmsOutbox.id).desc()).limit(limit)
        if application is not None:
            query = query.where(
                (col(SmsOutbox.application_id) == application)
                | (col(SmsOutbox.filing_id) == application)
            )
        if failed:
            query = query.where(SmsOutbox.status == SmsStatus.FAILED)
        async with database() as db, db.session() as session:
            return list((await session.exec(query)).all())

    rows = run(main)
    if not rows:
        what = "failed SMS" if failed else "SMS"
        console.print(f"no {what}{f' for {application}' if application else ''}")
        return
    _print_rows(rows)


def _print_rows(rows: Sequence[SmsOutbox]) -> None:
    from chronic.sms.phone import mask_phone

    zone = zone_of(office_region())
    table = Table(expand=False)
    for column in (
        "outbox",
        "application",
        "template",
        "status",
        "attempts",
        "recipient",
        "last error",
        "created",
        "sent",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        recipient = "-" if row.recipient in ("", "-") else mask_phone(row.recipient)
        table.add_row(
            str(row.id),
            escape(_addressee(row)),
            row.template,
            _status(row.status),
            str(row.attempts),
            recipient,
            escape(row.last_error or ""),
            local(row.created_at, zone),
            local(row.sent_at, zone),
        )
    width = console.width if console.is_terminal else max(console.width, _TABLE_WIDTH)
    Console(width=width, highlight=False, soft_wrap=False).print(table)


def _addressee(row: SmsOutbox) -> str:
    if row.application_id:
        return str(row.application_id)
    if row.filing_id:
        return str(row.filing_id)
    person = (row.params or {}).get("person_id")
    if person:
        return f"person #{person}"
    expert = (row.params or {}).get("to_expert")
    if expert:
        return f"expert {expert}"
    hospital = (row.params or {}).get("hospital_code")
    return f"hospital {hospital}" if hospital else "hospital"


def _status(status: str) -> str:
    style = {"sent": "green", "failed": "red", "pending": "yellow"}.get(str(status), "")
    return f"[{style}]{status}[/]" if style else str(status)


# ---- sign-in codes (development) --------------------------------------------------------------


@app.command()
def code(
    outbox_id: Annotated[int, typer.Argument(metavar="OUTBOX_ID", help="The sign-in SMS's row.")],
) -> None:
    """Show the hall's sign-in code of an outbox row — only on a stack whose SMS gateway is
    `log` (development: no SMS leaves, so this is how the code reaches you). Audited."""

    async def main() -> str:
        from chronic.actor import record_action
        from chronic.sms.sealed import unseal
        from chronic.sms.settings import SmsSettings
        from models.notifications import SmsTemplate
        from models.tables import SmsOutbox

        if SmsSettings().gateway != "log":
            raise CommandFailed(
                "sign-in codes are shown only on a development stack (CHRONIC_SMS_GATEWAY=log); "
                "with a real gateway the code is on the person's phone"
            )
        async with database() as db, db.session() as session:
            row = await session.get(SmsOutbox, outbox_id)
            if row is None or row.template != SmsTemplate.SIGN_IN_CODE.value:
                raise CommandFailed(f"outbox row {outbox_id} is not a sign-in code")
            await record_action(session, "sms_code_shown", None, outbox=outbox_id)
            return unseal(str(row.params["code"]))

    console.print(run(main))


# ---- resend -----------------------------------------------------------------------------------


@app.command()
def resend(
    outbox_ids: Annotated[
        list[int] | None,
        typer.Argument(metavar="[OUTBOX_ID ...]", help="Outbox rows to resend (see `sms list`)."),
    ] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Resend every failed row.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for each delivery's outcome (0: do not wait)."),
    ] = 30.0,
) -> None:
    """Start the delivery of failed SMS again, under their own dedup key (sent at most once).

    Fix the cause first (a number in the database, a template setting): a delivery that still
    cannot succeed fails again and says why. Each resend is recorded in the audit trail.
    """

    async def main() -> list[Resent]:
        if not outbox_ids and not all_failed:
            raise CommandFailed("name the outbox rows to resend, or pass --all-failed")
        async with database() as db:
            rows = await _rows_to_resend(db, outbox_ids or [], all_failed)
            if not rows:
                return []
            client = await temporal()
            return list(await asyncio.gather(*(_resend_one(client, db, row, wait) for row in rows)))

    results = run(main)
    if not results:
        console.print("no failed SMS to resend")
        return
    for result in results:
        mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
        console.print(f"{mark} outbox {result.outbox_id}  {escape(result.label)}  {result.outcome}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


async def _rows_to_resend(
    db: Database, outbox_ids: Sequence[int], all_failed: bool
) -> list[SmsOutbox]:
    from sqlmodel import col, select

    from models.tables import SmsOutbox

    async with db.session() as session:
        rows: dict[int | None, SmsOutbox] = {}
        if outbox_ids:
            found = (
                await session.exec(select(SmsOutbox).where(col(SmsOutbox.id).in_(outbox_ids)))
            ).all()
            rows.update((r.id, r) for r in found)
            unknown = [str(i) for i in outbox_ids if i not in rows]
            if unknown:
                raise CommandFailed(f"no outbox row {', '.join(unknown)} (see `chronic sms list`)")
            not_failed = [r for r in found if r.status != SmsStatus.FAILED]
            if not_failed:
                raise CommandFailed(
                    "; ".join(
                        f"outbox row {r.id} is {r.status}, not failed: nothing to resend"
                        for r in not_failed
                    )
                )
        if all_failed:
            failed = (
                await session.exec(
                    select(SmsOutbox)
                    .where(SmsOutbox.status == SmsStatus.FAILED)
                    .order_by(col(SmsOutbox.id))
                )
            ).all()
            rows.update((r.id, r) for r in failed)
        return [rows[i] for i in sorted(i for i in rows if i is not None)]


async def rebuild_request(db: Database, row: SmsOutbox) -> SmsRequest:
    """The ``SmsRequest`` an outbox row was written for (see ``request_from_outbox``).

    A hospital message written before the hospital code was kept in its params goes to the
    hospital of the expert it names.

    Raises:
        CommandFailed: the template is unknown or the row does not say which hospital.
    """
    from chronic.sms.delivery import request_from_outbox
    from models.tables import Expert

    hospital_code: str | None = None
    expert_code = (row.params or {}).get("expert_code")
    if row.application_id is None and row.filing_id is None and expert_code:
        async with db.session() as session:
            expert = await session.get(Expert, expert_code)
        hospital_code = expert.hospital_code if expert is not None else None
    try:
        return request_from_outbox(row, hospital_code=hospital_code)
    except ValueError as error:
        raise CommandFailed(f"cannot resend outbox row {row.id}: {error}") from None


async def _resend_one(client: Client, db: Database, row: SmsOutbox, wait: float) -> Resent:
    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
    from temporalio.exceptions import ApplicationError

    from chronic.actor import record_action
    from chronic.sms.delivery import start_delivery
    from workflows.sms import SmsDelivery, workflow_id

    assert row.id is not None
    outbox_id = row.id
    request = await rebuild_request(db, row)
    label = f"{_addressee(row)} {row.template}"
    started = await start_delivery(client, request)
    async with db.session() as session:
        await record_action(
            session,
            RESEND_ACTION,
            row.application_id,
            filing_id=row.filing_id,
            outbox_id=row.id,
            dedup_key=row.dedup_key,
            template=row.template,
            started=started,
        )
    handle = client.get_workflow_handle_for(SmsDelivery.run, workflow_id(row.dedup_key))
    if not started:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            return Resent(outbox_id, label, "already sent by its delivery", True)
        return Resent(outbox_id, label, "already in delivery, still retrying", True)
    if wait <= 0:
        return Resent(outbox_id, label, "started", True)
    try:
        result = await asyncio.wait_for(handle.result(), wait)
    except TimeoutError:
        return Resent(
            outbox_id,
            label,
            f"started; not sent within {wait:.0f} s, still retrying — see `chronic sms list`",
            True,
        )
    except WorkflowFailureError as error:
        cause = error.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
        return Resent(outbox_id, label, f"failed again: {escape(reason)}", False)
    return Resent(outbox_id, label, f"started → {result.status}", True)
