"""`chronic submit`, `chronic resubmit`, `chronic status`: an application from the clerk's desk.

`submit` checks the file first (every problem at once, with its field path) and starts nothing
unless the whole form is valid and both Temporal and PostgreSQL answer. Its last line of output
is the application ID alone, so a script can take it with ``tail -1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chronic.cli.forms import (
    FileArgument,
    name,
    parse_file,
    read,
    record_and_start,
    store_scans,
)
from chronic.cli.output import (
    ApplicationArg,
    CommandFailed,
    console,
    database,
    disease_label,
    local,
    next_line,
    policy_of,
    print_problems,
    progress_of,
    run,
    send_update,
    settled_progress,
    temporal,
    zone_of,
)
from models.application import (
    ApplicationForm,
    MaterialRef,
    parse_form,
    problems_of,
)
from models.messages import MaterialItem, OfferView, Progress, Resubmission
from workflows.application import ApplicationWorkflow


def _parse(path: str) -> ApplicationForm:
    from chronic.settings import get_settings

    policy_dir = get_settings().policy_dir
    return parse_file(path, lambda data: parse_form(data, policy_dir=policy_dir), "application")


# ---- submit ---------------------------------------------------------------------------------


def submit(file: FileArgument) -> None:
    """Check FILE.json and submit it: records the application and starts its workflow.

    The region comes from the file. The last line printed is the application ID. When
    Temporal does not answer, the application is still recorded and its process starts as
    soon as Temporal answers again (the review worker's reconciler).
    """
    form = _parse(file)
    stored = 0

    async def main() -> tuple[str, str | None]:
        from chronic.settings import get_settings
        from chronic.submission import submit as submit_application

        nonlocal stored
        stored = await store_scans(form.materials, file)
        settings = get_settings()
        return await record_and_start(
            file,
            lambda client, db: submit_application(form, client=client, db=db, settings=settings),
        )

    application_id, deferred = run(main)
    _print_submitted(form, application_id, deferred, stored)


def _print_submitted(
    form: ApplicationForm, application_id: str, deferred: str | None = None, stored: int = 0
) -> None:
    policy = policy_of(form.region)
    applicant = form.applicant.masked()
    disease = policy.disease(form.disease_code) if policy else None
    console.print(f"[bold green]submitted[/] {application_id}")
    if deferred is not None:
        console.print(
            f"  [bold yellow]process not started yet[/]: {escape(deferred)}. The application "
            "is recorded; its process will start as soon as Temporal answers (the review "
            "worker checks every minute). Nothing has to be submitted again."
        )
    console.print(
        f"  applicant  {escape(applicant.name)} · ID {applicant.id_number} · mobile "
        f"{applicant.mobile}"
    )
    console.print(f"  disease    {escape(disease_label(form.region, form.disease_code))}")
    if form.proxy is not None:
        proxy = form.proxy.masked()
        console.print(
            f"  proxy      {escape(proxy.name)}"
            + (f" · ID {proxy.id_number}" if proxy.id_number else "")
            + (f" · mobile {proxy.mobile}" if proxy.mobile else "")
            + " (代办人, submitted for the applicant)"
        )
    console.print(
        f"  materials  {len(form.materials)} · designated hospital {form.designated_hospital}"
        + (
            f" · community health centre {form.community_health_centre}"
            if form.community_health_centre
            else ""
        )
        + (f" · pharmacy {form.designated_pharmacy}" if form.designated_pharmacy else "")
    )
    console.print(
        f"  scans      {stored} of {len(form.materials)} stored encrypted by SHA-256"
        + (
            f" ({len(form.materials) - stored} named files are not on this machine: "
            "referenced by their digest only)"
            if stored < len(form.materials)
            else ""
        )
    )
    if policy is not None and disease is not None:
        review = (
            "one expert's final review (instant track)"
            if disease.instant_track
            else "initial review and re-review by two different experts"
        )
        console.print(
            f"  next       intake checks {'once it starts' if deferred else 'now'}; then "
            f"{review}, drawn at random from the "
            f"{disease.category} pool; each expert has {_hours(policy.accept_window)} to accept"
        )
        console.print(
            f"             result by SMS to {applicant.mobile} within "
            f"{policy.sla_working_days_min}–{policy.sla_working_days_max} working days"
        )
    console.print(f"  follow     chronic status {application_id}")
    # The ID alone on the last line: `chronic submit form.json | tail -1`.
    console.print(application_id, markup=False)


def _hours(window: Any) -> str:
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400 * 2:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


# ---- resubmit -------------------------------------------------------------------------------


class _MaterialsFile(BaseModel):
    """A resubmission file: just the new round of materials."""

    model_config = ConfigDict(extra="forbid")

    materials: list[MaterialRef] = Field(min_length=1)


def _materials(path: str) -> tuple[MaterialItem, ...]:
    """The materials of ``path``: ``{"materials": [...]}`` or a whole application form."""
    data = read(path)
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = None  # parse_form reports the syntax error with its position
    if not (isinstance(parsed, dict) and set(parsed) == {"materials"}):
        refs: list[MaterialRef] = list(_parse(path).materials)
    else:
        try:
            refs = _MaterialsFile.model_validate(parsed).materials
        except ValidationError as error:
            print_problems(
                f"{name(path)} holds no valid materials",
                ((p.path, p.message) for p in problems_of(error)),
            )
            raise typer.Exit(1) from None
    return tuple(MaterialItem.model_validate(ref.model_dump()) for ref in refs)


def resubmit(
    application: ApplicationArg,
    file: FileArgument,
) -> None:
    """Bring corrected or supplementary materials for APP (a returned or paused application).

    FILE.json holds {"materials": [...]} or a whole application form (its materials are used).
    """
    materials = _materials(file)
    resubmission = Resubmission(materials=materials)

    async def main() -> tuple[int, Progress | None]:
        await store_scans([MaterialRef.model_validate(m.model_dump()) for m in materials], file)
        client = await temporal()
        new_round = await send_update(
            client,
            application,
            lambda h: h.execute_update(ApplicationWorkflow.resubmit, resubmission),
        )
        return new_round, await settled_progress(
            client, application, lambda p: p.waiting_for.startswith("the applicant to resubmit")
        )

    new_round, progress = run(main)
    console.print(
        f"[bold green]resubmitted[/] {application}: materials round {new_round} "
        f"({len(materials)} document{'s' if len(materials) != 1 else ''})"
    )
    console.print(next_line(progress, application))


# ---- status ---------------------------------------------------------------------------------


def status(
    application: ApplicationArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the Progress as JSON (for scripts).")
    ] = False,
) -> None:
    """Where APP stands: status, stage, offers, decisions, the working-day target.

    When the process does not answer (its workflow task keeps failing, no worker) it still
    shows what is known: the row in the database, the failure, and what the operator can do.
    """

    async def main() -> tuple[Progress | None, Known]:
        client = await temporal()
        known = await _known(client, application)
        if known.failing is None and known.workflow:
            try:
                return await progress_of(client, application), known
            except CommandFailed as error:
                if as_json or known.row is None:
                    raise
                known.query_error = str(error)
        elif known.row is None:
            raise CommandFailed(f"no application {application}")
        elif as_json:
            raise CommandFailed(known.headline())
        return None, known

    progress, known = run(main)
    if as_json:
        # Plain text, never wrapped or coloured: scripts parse it (Progress.model_validate_json).
        assert progress is not None
        typer.echo(progress.model_dump_json(indent=2))
        return
    if progress is not None:
        render_progress(progress)
    else:
        _render_known(application, known)
    for sms in known.failed_sms:
        console.print(f"  [bold red]SMS failed[/] {escape(sms)}")


@dataclass
class Known:
    """What is known of an application besides its workflow's answer."""

    workflow: bool = False
    failing: Any = None  # chronic.closing.TaskFailure
    row: dict[str, Any] | None = None
    failed_sms: list[str] = field(default_factory=list)
    query_error: str | None = None
    database_error: str | None = None

    def headline(self) -> str:
        if self.failing is not None:
            return f"workflow task failing: {self.failing.message}"
        if not self.workflow:
            return "its process has not started yet"
        return self.query_error or "the process does not answer"


async def _known(client: Any, application_id: str) -> Known:
    """The row, failed SMS and a failing workflow task; each part that cannot be read is left
    out (the database may be away while Temporal answers, and the other way round)."""
    from temporalio.service import RPCError, RPCStatusCode

    from chronic.closing import task_failure

    known = Known()
    try:
        description = await client.get_workflow_handle(application_id).describe()
        known.workflow = True
        known.failing = await task_failure(client, description)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise CommandFailed(f"Temporal refused to describe {application_id}: {error}") from None
    try:
        known.row, known.failed_sms = await _row_and_failed_sms(application_id)
    except Exception as error:  # the database is only a second source here
        known.database_error = str(error).splitlines()[0][:200] if str(error) else "unreachable"
    return known


async def _row_and_failed_sms(application_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    import sqlalchemy as sa
    from sqlmodel import col

    from models.domain import SmsStatus
    from models.tables import Application, SmsOutbox

    async with database() as db, db.session() as session:
        row = await session.get(Application, application_id)
        failed = list(
            await session.scalars(
                sa.select(SmsOutbox)
                .where(
                    col(SmsOutbox.application_id) == application_id,
                    col(SmsOutbox.status) == SmsStatus.FAILED,
                )
                .order_by(col(SmsOutbox.id))
            )
        )
    fields = (
        None
        if row is None
        else {
            "status": str(row.status),
            "stage": str(row.stage),
            "region": row.region,
            "disease_code": row.disease_code,
            "submitted_at": row.submitted_at,
            "closed_at": row.closed_at,
            "reason": row.outcome_reason,
        }
    )
    return fields, [
        f"{sms.template}: {sms.last_error or 'no reason recorded'} ({sms.attempts} attempts)"
        for sms in failed
    ]


def _render_known(application_id: str, known: Known) -> None:
    """The view of `chronic status` when the process does not answer."""
    row = known.row
    region = row["region"] if row else "sanmenxia"
    zone = zone_of(region)
    if row is None:
        console.print(f"[bold]{application_id}[/]")
        console.print(f"  database   not read: {escape(known.database_error or 'no row')}")
    else:
        console.print(
            f"[bold]{application_id}[/] · "
            f"{escape(disease_label(region, row['disease_code']))} · {region}"
        )
        console.print(
            f"  status     {_status_style(row['status'])} (stage {row['stage']}) — from the "
            "database; the process did not answer"
        )
        console.print(f"  submitted  {local(row['submitted_at'], zone)}")
        if row["closed_at"] is not None:
            console.print(f"  closed     {local(row['closed_at'], zone)}")
        if row["reason"]:
            console.print(f"  reason     {escape(row['reason'])}")
    failing = known.failing
    if failing is not None:
        since = f" since {local(failing.since, zone)}" if failing.since else ""
        console.print(
            f"  [bold red]problem[/]    workflow task failing{since}: {escape(failing.message)}"
        )
        console.print(
            f"  do         once the fix is deployed, `chronic admin retry {application_id}`; "
            f"or end it: `chronic admin close {application_id} --reason …`"
        )
    elif not known.workflow:
        if row is not None and row["closed_at"] is None:
            console.print(
                "  [bold yellow]problem[/]    its process has not started yet (Temporal did not "
                "answer at submission); the review worker's reconciler starts it within a minute"
            )
    else:
        console.print(f"  [bold red]problem[/]    {escape(known.query_error or 'no answer')}")
        console.print(
            f"  do         see `chronic admin stuck`; `chronic admin close {application_id} "
            "--reason …` ends it"
        )


_GOOD = {"approved"}
_BAD = {"rejected", "refused", "closed"}


def _status_style(value: str) -> str:
    if value in _GOOD:
        return f"[bold green]{value}[/]"
    if value in _BAD:
        return f"[bold red]{value}[/]"
    return f"[bold]{value}[/]"


def render_progress(progress: Progress, *, now: datetime | None = None) -> None:
    """The rich view of ``chronic status``."""
    zone = zone_of(progress.region)
    policy = policy_of(progress.region)
    console.print(
        f"[bold]{progress.application_id}[/] · "
        f"{escape(disease_label(progress.region, progress.disease_code))} · {progress.region}"
    )
    console.print(f"  status     {_status_style(progress.status)} (stage {progress.stage})")
    if progress.finished_at is None:
        console.print(f"  next       {escape(progress.waiting_for)}")
    console.print(f"  submitted  {local(progress.submitted_at, zone)}")
    if progress.finished_at is not None:
        console.print(f"  finished   {local(progress.finished_at, zone)}")
    console.print(f"  target     {_sla_line(progress, policy, zone, now)}")
    if progress.materials_round > 1:
        console.print(f"  materials  round {progress.materials_round}")
    if progress.resubmission_deadline is not None:
        console.print(
            f"  resubmit   by {local(progress.resubmission_deadline, zone)} "
            f"(`chronic resubmit {progress.application_id} FILE.json`)"
        )
    current = progress.current_offer
    if current is not None:
        console.print(f"  offer      {_offer_line(current, zone)}")
    if progress.benefit is not None:
        benefit = progress.benefit
        until = local_date(benefit.valid_to) if benefit.valid_to else "long-term"
        console.print(
            f"  benefit    valid {local_date(benefit.valid_from)} → {until} at "
            f"{escape(benefit.designated_hospital_name)}"
        )
    for alert in getattr(progress, "alerts", ()):
        console.print(f"  [bold yellow]alert[/]      {escape(alert)}")
    if progress.reasons:
        console.print("  reasons")
        for reason in progress.reasons:
            console.print(f"    - {escape(reason)}")
    if progress.offers:
        _print_offers(progress.offers, zone)
    if progress.decisions:
        console.print("[bold]Decisions[/]")
        table = Table(expand=False)
        for column in ("stage", "expert", "decision", "at", "opinion"):
            table.add_column(column)
        for d in progress.decisions:
            table.add_row(
                d.stage,
                d.expert,
                _status_style(_decided(d.decision)),
                local(d.at, zone),
                escape(d.opinion),
            )
        _wide().print(table)


_TABLE_WIDTH = 132
"""Room the offers table needs; a narrower terminal gets one line per offer instead."""


def _table_width() -> int:
    # Output into a pipe or a file is not cut to 80 columns: use the table's natural width.
    return console.width if console.is_terminal else max(console.width, _TABLE_WIDTH)


def _wide() -> Console:
    """A console as wide as the tables need when output goes to a pipe or a file."""
    return Console(width=_table_width(), highlight=False)


def _print_offers(offers: tuple[OfferView, ...], zone: Any) -> None:
    width = _table_width()
    console.print("[bold]Offers[/]")
    if width >= _TABLE_WIDTH - 20:
        _wide().print(_offers_table(offers, zone))
        return
    for o in offers:
        deadline = o.decision_deadline if o.decision_deadline is not None else o.accept_deadline
        reason = f" — {escape(o.reason)}" if o.reason else ""
        console.print(
            f"  #{o.seq} {o.stage} {o.expert} (pool {o.pool_size}) {o.status}; offered "
            f"{local(o.offered_at, zone)}, deadline {local(deadline, zone)}, answered "
            f"{local(o.answered_at, zone)}{reason}"
        )


def local_date(day: Any) -> str:
    return str(day.isoformat())


def _decided(decision: str) -> str:
    return {"approve": "approved", "reject": "rejected"}.get(decision, decision)


def _offer_line(offer: OfferView, zone: Any) -> str:
    head = (
        f"#{offer.seq} {offer.stage} to {offer.expert} (pool of {offer.pool_size}), {offer.status}"
    )
    if offer.status == "pending":
        return f"{head} — accept or decline by {local(offer.accept_deadline, zone)}"
    if offer.status == "accepted":
        return f"{head} — decide by {local(offer.decision_deadline, zone)}"
    return head


def _offers_table(offers: tuple[OfferView, ...], zone: Any) -> Table:
    table = Table(expand=False)
    for column in ("#", "stage", "expert", "pool", "status", "offered", "deadline", "answered"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason")
    for o in offers:
        deadline = o.decision_deadline if o.decision_deadline is not None else o.accept_deadline
        table.add_row(
            str(o.seq),
            o.stage,
            o.expert,
            str(o.pool_size),
            o.status,
            local(o.offered_at, zone),
            local(deadline, zone),
            local(o.answered_at, zone),
            escape(o.reason or ""),
        )
    return table


def _sla_line(progress: Progress, policy: Any, zone: Any, now: datetime | None) -> str:
    span = (
        f"{policy.sla_working_days_min}–{policy.sla_working_days_max} working-day target"
        if policy is not None
        else "working-day target"
    )
    due = progress.sla_due_at
    if due is None:
        return f"{span}: due date being computed"
    head = f"{span}: due {local(due, zone)}"
    if progress.finished_at is not None:
        met = progress.finished_at <= due and not progress.sla_breached
        return f"{head} ({'[green]met[/]' if met else '[bold red]missed[/]'})"
    if progress.sla_breached:
        return f"{head} ([bold red]BREACHED[/])"
    left = due - (now or datetime.now(UTC))
    if left.total_seconds() <= 0:
        return f"{head} ([bold red]BREACHED[/])"
    days, hours = left.days, left.seconds // 3600
    remaining = f"{days} d {hours} h left" if days else f"{hours} h left"
    return f"{head} ([green]on track[/], {remaining})"
