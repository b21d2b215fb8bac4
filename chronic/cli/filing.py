"""`chronic filing submit`, `chronic filing status`: out-of-area care filings (异地就医备案).

`submit` checks the file first (every problem at once, with its field path) and records
nothing unless the whole form is valid and the person is in the register; the submission is
audited as the operator running the command. Its last line is the filing ID alone, like
`chronic submit`. `status` reads the filing's row (where every step of its process is
written) and what Temporal says of the process.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict
from rich.markup import escape

from chronic.cli.forms import FileArgument, parse_file, record_and_start
from chronic.cli.output import (
    CommandFailed,
    console,
    database,
    local,
    run,
    temporal,
)
from models.domain import FilingStatus, FilingType
from models.filing import INSURED_PLACES, FilingForm, FilingProgress, parse_filing

app = typer.Typer(
    no_args_is_help=True, help="Out-of-area care filings (异地就医备案): submit one, follow it."
)


def _parse(path: str) -> FilingForm:
    return parse_file(path, parse_filing, "filing")


# ---- submit ---------------------------------------------------------------------------------


@app.command()
def submit(file: FileArgument) -> None:
    """Check FILE.json and submit it: records the filing and starts its process.

    The last line printed is the filing ID. When Temporal does not answer, the filing is
    still recorded and its process starts as soon as Temporal answers again.
    """
    form = _parse(file)

    async def main() -> tuple[str, str | None]:
        from chronic.actor import operator
        from chronic.filings import submit_filing
        from chronic.settings import get_settings

        settings, actor = get_settings(), operator()
        return await record_and_start(
            file,
            lambda client, db: submit_filing(
                form, client=client, db=db, settings=settings, actor=actor
            ),
        )

    filing_id, deferred = run(main)
    applicant = form.applicant.masked()
    kind = "long-term" if form.filing_type.long_term else "temporary"
    console.print(f"[bold green]submitted[/] {filing_id}")
    if deferred is not None:
        console.print(
            f"  [bold yellow]process not started yet[/]: {escape(deferred)}. The filing is "
            "recorded; its process will start as soon as Temporal answers (the review worker "
            "checks every minute). Nothing has to be submitted again."
        )
    console.print(
        f"  applicant    {escape(applicant.name)} · ID {applicant.id_number} · mobile "
        f"{applicant.mobile}"
    )
    console.print(
        f"  filing       {form.filing_type} ({kind}) · {form.place.name} → "
        f"{escape(form.destination.label)} · from {form.start_date.isoformat()}"
        + (f" to {form.end_date.isoformat()}" if form.end_date else "")
    )
    console.print(f"  uploads      {', '.join(u.kind for u in form.uploads)}")
    console.print(
        f"  next         checks against the register {'once it starts' if deferred else 'now'};"
        f" the result by SMS to {applicant.mobile}"
    )
    console.print(f"  follow       chronic filing status {filing_id}")
    # The ID alone on the last line: `chronic filing submit form.json | tail -1`.
    console.print(filing_id, markup=False)


# ---- status ---------------------------------------------------------------------------------


class FilingView(BaseModel):
    """What `chronic filing status --json` prints (no personal data)."""

    model_config = ConfigDict(frozen=True)

    filing_id: str
    status: FilingStatus
    filing_type: FilingType
    long_term: bool
    insured_place: str
    insured_place_name: str
    destination: str
    start_date: date
    end_date: date | None
    valid_from: date | None
    valid_to: date | None
    reasons: tuple[str, ...]
    uploads: tuple[str, ...]
    submitted_at: datetime
    closed_at: datetime | None
    expired_at: datetime | None
    process: str
    """``completed``, ``running: <what next>``, ``not started``, ``failed``, … (Temporal)."""
    failed_sms: tuple[str, ...] = ()


@app.command()
def status(
    filing: Annotated[str, typer.Argument(metavar="ID", help="Filing ID (FIL-…).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the filing as JSON (for scripts).")
    ] = False,
) -> None:
    """Where the filing stands: status, validity, reasons, and its process."""

    async def main() -> FilingView:
        return await _view(filing)

    view = run(main)
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
        return
    _render(view)


async def _view(filing_id: str) -> FilingView:
    import sqlalchemy as sa
    from sqlmodel import col

    from models.domain import SmsStatus
    from models.filing import destination_label
    from models.tables import FilingRecord, FilingUpload, SmsOutbox

    async with database() as db, db.session() as session:
        row = await session.get(FilingRecord, filing_id)
        if row is None:
            raise CommandFailed(f"no filing {filing_id}")
        uploads = tuple(
            await session.scalars(
                sa.select(col(FilingUpload.kind))
                .where(col(FilingUpload.filing_id) == filing_id)
                .order_by(col(FilingUpload.position))
            )
        )
        failed = list(
            await session.scalars(
                sa.select(SmsOutbox)
                .where(
                    col(SmsOutbox.filing_id) == filing_id,
                    col(SmsOutbox.status) == SmsStatus.FAILED,
                )
                .order_by(col(SmsOutbox.id))
            )
        )
    place = INSURED_PLACES.get(row.insured_place)
    return FilingView(
        filing_id=row.id,
        status=row.status,
        filing_type=row.filing_type,
        long_term=FilingType(row.filing_type).long_term,
        insured_place=row.insured_place,
        insured_place_name=place.name if place is not None else row.insured_place,
        destination=destination_label(row.destination_province, row.destination_city),
        start_date=row.start_date,
        end_date=row.end_date,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        reasons=tuple(row.reasons or ()),
        uploads=tuple(str(kind) for kind in uploads),
        submitted_at=row.submitted_at,
        closed_at=row.closed_at,
        expired_at=row.expired_at,
        process=await _process(filing_id),
        failed_sms=tuple(
            f"{sms.template}: {sms.last_error or 'no reason recorded'} ({sms.attempts} attempts)"
            for sms in failed
        ),
    )


async def _process(filing_id: str) -> str:
    """What Temporal says of the filing's process, in a few words (never fails the command)."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    from chronic.cli.output import QUERY_TIMEOUT
    from workflows.filing import OutOfAreaFilingWorkflow

    try:
        client = await temporal()
    except CommandFailed as error:
        return f"unknown: {str(error).split(' — ')[0]}"
    handle = client.get_workflow_handle_for(OutOfAreaFilingWorkflow.run, filing_id)
    try:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            name = description.status.name.lower() if description.status else "unknown"
            return name
        progress: FilingProgress = await handle.query(
            OutOfAreaFilingWorkflow.progress, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return "not started"
        return f"running (no answer: {str(error).splitlines()[0][:120]})"
    return f"running: {progress.waiting_for}"


_GOOD = {FilingStatus.FILED}
_BAD = {FilingStatus.REFUSED, FilingStatus.CLOSED, FilingStatus.EXPIRED}


def _render(view: FilingView) -> None:
    from chronic.cli.output import zone_of

    place = INSURED_PLACES.get(view.insured_place)
    zone = zone_of(place.region if place is not None else "sanmenxia")
    style = "green" if view.status in _GOOD else "red" if view.status in _BAD else "bold"
    kind = "long-term" if view.long_term else "temporary"
    console.print(
        f"[bold]{view.filing_id}[/] · out-of-area filing · {view.filing_type} ({kind}) · "
        f"{escape(view.insured_place_name)} → {escape(view.destination)}"
    )
    console.print(f"  status     [{style}]{view.status}[/]")
    if view.valid_from is not None:
        until = view.valid_to.isoformat() if view.valid_to else "long-term (until cancelled)"
        console.print(f"  valid      {view.valid_from.isoformat()} → {until}")
    end = f" · end {view.end_date.isoformat()}" if view.end_date else ""
    console.print(f"  start      {view.start_date.isoformat()}{end}")
    console.print(f"  submitted  {local(view.submitted_at, zone)}")
    if view.closed_at is not None:
        console.print(f"  decided    {local(view.closed_at, zone)}")
    if view.expired_at is not None:
        console.print(f"  expired    {local(view.expired_at, zone)}")
    console.print(f"  uploads    {', '.join(view.uploads) or '-'}")
    console.print(f"  process    {escape(_process_line(view))}")
    if view.reasons:
        console.print("  reasons")
        for reason in view.reasons:
            console.print(f"    - {escape(reason)}")
    for sms in view.failed_sms:
        console.print(f"  [bold red]SMS failed[/] {escape(sms)}")


def _process_line(view: FilingView) -> str:
    if view.process == "not started" and view.closed_at is None:
        return (
            "not started yet (Temporal did not answer at submission); the review worker's "
            "reconciler starts it within a minute"
        )
    return view.process
