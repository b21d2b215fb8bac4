"""`chronic settlement import FILE.csv`: settlement months for the renewal check."""

from __future__ import annotations

import typer

from chronic.cli.forms import FileArgument, name, read
from chronic.cli.output import CommandFailed, console, database, print_problems, run

app = typer.Typer(
    no_args_is_help=True, help="Settlement months from the settlement system (renewal check)."
)


@app.command(name="import")
def import_(file: FileArgument) -> None:
    """Import FILE.csv (id_number,disease_code,month,normal): checked whole first, every
    problem listed with its line, nothing written unless there is none."""
    from chronic.actor import operator
    from chronic.settlements import SettlementFileError, import_lines, parse

    try:
        text = read(file).decode("utf-8")
    except UnicodeDecodeError:
        raise CommandFailed(f"{name(file)} is not UTF-8 text: save it as UTF-8") from None
    try:
        lines = parse(text)
    except SettlementFileError as error:
        print_problems(f"{name(file)} cannot be imported", ((None, p) for p in error.problems))
        raise typer.Exit(1) from None

    async def main() -> str:
        async with database() as db:
            try:
                async with db.session() as session:
                    done = await import_lines(session, lines, actor=operator())
            except SettlementFileError as error:
                print_problems(
                    f"{name(file)} cannot be imported", ((None, p) for p in error.problems)
                )
                raise typer.Exit(1) from None
        return f"imported {done.months} settlement months of {done.persons} persons"

    console.print(run(main))
