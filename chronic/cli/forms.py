"""What `chronic submit` and `chronic filing submit` share: a form file in, a recorded case out.

Reading FILE.json (or standard input), listing every problem with its field path, and the
submission itself — record the row, then start its workflow; when Temporal does not answer,
the row stays and the reconciler starts it — are the same for an application and a filing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from temporalio.client import Client

from chronic.cli.output import CommandFailed, database, fail, print_problems, temporal
from models.application import FormError

if TYPE_CHECKING:
    from chronic.db import Database

F = TypeVar("F")

FileArgument = Annotated[
    str, typer.Argument(metavar="FILE.json", help="The JSON file, or - to read standard input.")
]


def read(path: str) -> bytes:
    """The bytes of ``path`` (``-``: standard input); one line and exit 1 when unreadable."""
    if path == "-":
        stream = sys.stdin
        return stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror or error}")


def name(path: str) -> str:
    return "standard input" if path == "-" else path


def parse_file(path: str, parse: Callable[[bytes], F], what: str) -> F:
    """The validated form in ``path``; every problem listed on stderr and exit 1 otherwise."""
    data = read(path)
    try:
        return parse(data)
    except FormError as error:
        print_problems(
            f"{name(path)} is not a valid {what}", ((p.path, p.message) for p in error.problems)
        )
        raise typer.Exit(1) from None


async def record_and_start(
    path: str, submit: Callable[[Client | None, Database], Awaitable[str]]
) -> tuple[str, str | None]:
    """Run ``submit`` (record, then start) with the database and, if it answers, Temporal.

    Returns the case's ID and, when its workflow could not be started yet, why (the row is
    recorded and the reconciler starts it). A refusal lists every problem and exits 1.
    """
    # The database layer (SQLAlchemy, asyncpg) is imported by the submitting commands only:
    # the others talk to Temporal alone and start faster without it.
    from chronic.submission import StartDeferred, SubmissionRefused

    async with database() as db:
        unreachable: str | None = None
        try:
            client = await temporal()
        except CommandFailed as error:
            client, unreachable = None, str(error).split(" — ")[0]
        try:
            return await submit(client, db), None
        except StartDeferred as deferred:
            return deferred.application_id, unreachable or deferred.cause
        except SubmissionRefused as refused:
            print_problems(
                f"{name(path)} was not submitted", (split_problem(p) for p in refused.problems)
            )
            raise typer.Exit(1) from None


_FIELD_PATH = re.compile(
    r"^(?P<path>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (?P<message>.+)$", re.S
)


def split_problem(problem: str) -> tuple[str | None, str]:
    """``"applicant.id_number: no insured …"`` → (path, message) when it starts with a path."""
    found = _FIELD_PATH.match(problem)
    return (found["path"], found["message"]) if found else (None, problem)
