"""What `chronic submit` and `chronic filing submit` share: a form file in, a recorded case out.

Reading FILE.json (or standard input), listing every problem with its field path, and the
submission itself — record the row, then start its workflow; when Temporal does not answer,
the row stays and the reconciler starts it — are the same for an application and a filing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from temporalio.client import Client

from chronic.cli.output import CommandFailed, database, fail, print_problems, temporal
from models.application import FormError, MaterialRef

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


async def store_scans(materials: Sequence[MaterialRef], form_path: str) -> int:
    """Keep every material whose file is on this machine in the document store, as the hall
    keeps an upload: checked by content, encrypted, addressed by its SHA-256.

    A relative ``file`` is looked for beside the form file, then in the working folder. A
    file that is not on this machine stays a reference to a scan kept elsewhere (the digest
    as given). Returns the materials and how many files were stored; a refused file or a
    digest that is not the file's lists every problem and exits 1, before anything is recorded.
    """
    from chronic.documents import DocumentRefused, DocumentStore
    from chronic.settings import get_settings

    store: DocumentStore | None = None
    problems: list[tuple[str | None, str]] = []
    stored = 0
    for i, material in enumerate(materials):
        found = _local_file(material.file, form_path)
        if found is None:
            continue
        data = found.read_bytes()
        try:
            store = store or DocumentStore.from_settings(get_settings())
            kept = await store.put(data)
        except DocumentRefused as refused:
            problems.append((f"materials[{i}].file", f"{found}: {refused.detail} — {refused.said}"))
            continue
        if kept.sha256 != material.sha256:
            problems.append(
                (
                    f"materials[{i}].sha256",
                    f"is not the SHA-256 of {found} (which is {kept.sha256}): copy that digest, "
                    "or name the right file",
                )
            )
        stored += 1
    if problems:
        print_problems(f"{name(form_path)} was not submitted", problems)
        raise typer.Exit(1)
    return stored


def _local_file(file: str, form_path: str) -> Path | None:
    """The file a material names, when it is on this machine."""
    path = Path(file).expanduser()
    candidates = [path] if path.is_absolute() else []
    if not path.is_absolute():
        if form_path != "-":
            candidates.append(Path(form_path).parent / path)
        candidates.append(Path.cwd() / path)
    return next((c for c in candidates if c.is_file()), None)
