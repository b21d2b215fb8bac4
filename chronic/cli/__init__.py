"""The `chronic` command line."""

from __future__ import annotations

import os
import sys

import typer

from chronic.cli import (
    admin,
    applications,
    audit,
    bench,
    benefit,
    codec,
    db,
    demo,
    dev,
    expert,
    filing,
    hall,
    office,
    policy,
    report,
    schedule,
    schema,
    seed,
    settlement,
    sms,
    user,
    worker,
)

app = typer.Typer(no_args_is_help=True, help="Chronic-condition benefit applications on Temporal.")
app.add_typer(dev.app, name="dev")
app.add_typer(db.app, name="db")
app.add_typer(seed.app, name="seed")
app.command(name="worker")(worker.worker)
app.command(name="submit")(applications.submit)
app.command(name="resubmit")(applications.resubmit)
app.command(name="status")(applications.status)
app.add_typer(expert.app, name="expert")
app.add_typer(office.office, name="office")
app.add_typer(office.hospital, name="hospital")
app.add_typer(filing.app, name="filing")
app.add_typer(benefit.app, name="benefit")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(report.app, name="report")
app.add_typer(schedule.app, name="schedule")
app.add_typer(admin.app, name="admin")
app.add_typer(schema.app, name="schema")
app.add_typer(settlement.app, name="settlement")
app.add_typer(sms.app, name="sms")
app.command(name="demo")(demo.demo)
app.command(name="bench")(bench.bench)
app.command(name="codec-server")(codec.codec_server)
app.command(name="hall")(hall.hall)
app.command(name="hall-load")(hall.hall_load)
app.add_typer(user.app, name="user")


def main() -> None:
    """Run the CLI, then leave without interpreter finalization.

    The Temporal client's native runtime may still have threads that call back into Python
    while the interpreter shuts down ("PyGILState_Release … finalizing", a rare abort after
    the command's output is complete). Exiting with ``os._exit`` after flushing skips that
    teardown; every command has finished its own cleanup (connections, files) by then.
    """
    try:
        app()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
