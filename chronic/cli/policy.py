"""`chronic policy show|check|diff`: the rules of a region, as the engine reads them.

A region's process and numbers are data (``models/policies/<region>.toml``, or the office's own
edition in ``CHRONIC_POLICY_DIR``). Before an edited profile is used, ``check`` lists every
problem with its path in the file and ``diff`` shows what it changes; once used, every
application keeps the edition it was submitted under, and ``show --application`` prints it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from chronic.cli.forms import split_problem
from chronic.cli.output import CommandFailed, console, database, fail, print_problems, run
from models.policy import (
    PolicyFileError,
    PolicyProfile,
    available_regions,
    human_duration,
    load_policy,
    read_policy_file,
)
from models.policy_diff import differences

app = typer.Typer(
    no_args_is_help=True,
    help="A region's rules: show them, check an edited profile, compare two editions.",
)

_SOURCE = (
    "a region (sanmenxia, wuhan, jilin: the profile in force, with CHRONIC_POLICY_DIR's edition "
    "if the office keeps one) or a profile file (.toml)"
)


def _policy_dir() -> Path | None:
    from chronic.settings import get_settings

    return get_settings().policy_dir


def _load(source: str) -> PolicyProfile:
    """A profile from a region name or a file; every problem listed and exit 1 otherwise."""
    path = Path(source)
    try:
        if source.endswith(".toml") or path.is_file():
            if not path.is_file():
                fail(f"no file {source}: give {_SOURCE}")
            return read_policy_file(path)
        return load_policy(source, _policy_dir())
    except PolicyFileError as error:
        print_problems(
            f"{error.source} is not a valid policy profile",
            (split_problem(p) for p in error.problems),
        )
        raise typer.Exit(1) from None
    except LookupError:
        fail(
            f"{source!r} is neither a region nor a file; regions: "
            f"{', '.join(available_regions(_policy_dir()))}"
        )


def show(
    region: Annotated[
        str | None, typer.Argument(metavar="REGION", help="Region or profile file.")
    ] = None,
    application: Annotated[
        str | None,
        typer.Option(
            "--application", "-a", metavar="APP", help="The edition APP is decided by instead."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole profile as JSON.")] = False,
) -> None:
    """Print a region's rules: numbers, tracks and their steps, catalogue, edition and digest."""
    if (region is None) == (application is None):
        raise typer.BadParameter("give a REGION (or profile file) or --application APP")
    policy = run(lambda: _kept(application)) if application else _load(region or "")
    if as_json:
        console.print_json(policy.model_dump_json())
        return
    _print(policy)


async def _kept(application_id: str | None) -> PolicyProfile:
    import sqlalchemy as sa
    from sqlmodel import col

    from chronic.policies import edition
    from models.tables import Application

    async with database() as db, db.session() as session:
        digest = await session.scalar(
            sa.select(col(Application.policy_digest)).where(col(Application.id) == application_id)
        )
        found = await session.scalar(
            sa.select(sa.func.count()).where(col(Application.id) == application_id)
        )
        if not found:
            raise CommandFailed(f"no application {application_id}")
        if digest is None:
            raise CommandFailed(
                f"{application_id} was recorded before editions were kept: its rules are in "
                "its workflow's input (Temporal UI, the first event)"
            )
        kept = await edition(session, digest)
    if kept is None:
        raise CommandFailed(f"the edition {digest[:12]} of {application_id} is missing")
    return kept


def _print(policy: PolicyProfile) -> None:
    console.print(
        f"[bold]{escape(policy.name)}[/] — region {policy.region}, edition {policy.version}, "
        f"digest {policy.digest[:12]}"
    )
    # A field's description justifies its default (Sanmenxia's seed); a value the profile sets
    # is justified by the comment next to it in the profile file.
    numbers = Table("rule", "value", "default's source", box=None, pad_edge=False)
    fields = type(policy).model_fields
    for name, value in policy.model_dump().items():
        if name in ("region", "name", "version", "tracks", "form", "catalogue", "catalogue_source"):
            continue
        field = fields[name]
        why = field.description or "" if value == field.default else "set by the profile"
        numbers.add_row(name, _value(value), escape(why))
    console.print(numbers)
    console.print("[bold]Tracks[/] (the first whose condition holds is the application's):")
    for track in policy.tracks:
        when = track.when.model_dump(exclude_defaults=True)
        condition = ", ".join(f"{k}={v}" for k, v in when.items()) or "always"
        console.print(f"  [bold]{track.name}[/] ({condition}): {escape(track.description)}")
        for i, step in enumerate(track.steps, 1):
            settings = step.model_dump(exclude={"kind"}, exclude_defaults=True)
            extra = ", ".join(f"{k}={_value(v)}" for k, v in settings.items())
            console.print(f"    {i}. {step.kind}" + (f" ({escape(extra)})" if extra else ""))
    _print_form(policy)
    catalogue = policy.catalogue
    console.print(
        f"[bold]Catalogue[/]: {len(catalogue)} diseases in {len(policy.categories)} categories; "
        f"{sum(d.instant_track for d in catalogue)} on the instant track, "
        f"{sum(d.track_a for d in catalogue)} track A, "
        f"{sum(d.resident_only for d in catalogue)} for residents only"
        + (" — [yellow]SAMPLE, not from a seed[/]" if policy.catalogue_sample else "")
    )
    if policy.catalogue_source:
        console.print(f"  source: {escape(policy.catalogue_source)}")
    console.print("  (`--json` lists every disease)")


def _print_form(policy: PolicyProfile) -> None:
    """What the region's application form requires beyond the common fields, and proxies."""
    required = ", ".join(field.value for field in policy.form.required) or "nothing more"
    proxy = policy.form.proxy
    needs = [
        what
        for what, wanted in (("ID number", proxy.id_number), ("mobile", proxy.mobile))
        if wanted
    ]
    by_proxy = (
        f"allowed: name{', ' + ', '.join(needs) if needs else ''}"
        if proxy.allowed
        else "not allowed"
    )
    elsewhere = policy.form.required_out_of_area
    if elsewhere is not None:
        names = ", ".join(field.value for field in elsewhere) or "nothing more"
        required += f" (of an applicant living elsewhere: {names})"
    console.print(f"[bold]Form[/]: requires {required}; by a proxy (代办): {by_proxy}")


def _value(value: Any) -> str:
    if value is None:
        return "none (unlimited / long-term)"
    if isinstance(value, timedelta):
        return human_duration(value)
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) or "-"
    return escape(str(value))


def check(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The profile to check (.toml).")],
) -> None:
    """Check an edited profile: every problem with its path in the file, exit 1 if any."""
    if not file.is_file():
        fail(f"no file {file}")
    policy = _load(str(file))
    console.print(
        f"{file}: a valid profile of {policy.region}, edition {policy.version}, digest "
        f"{policy.digest[:12]}; {len(policy.tracks)} tracks, {len(policy.catalogue)} diseases. "
        f"Compare it with the one in force: chronic policy diff {policy.region} {file}"
    )


def diff(
    old: Annotated[str, typer.Argument(metavar="A", help=_SOURCE)],
    new: Annotated[str, typer.Argument(metavar="B", help=_SOURCE)],
) -> None:
    """What changes from A to B, one line per rule, disease or track; exit 1 when they differ
    (like diff), 0 when they are the same."""
    a, b = _load(old), _load(new)
    lines = differences(a, b)
    if a.region != b.region:
        console.print(f"[yellow]note: A is {a.region}, B is {b.region}[/]")
    if not lines:
        console.print(f"no difference (digest {a.digest[:12]})")
        return
    if a.version == b.version:
        console.print(
            f"[yellow]both are edition {a.version}: raise `version` in B before it is used[/]"
        )
    for line in lines:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
        console.print(f"[{style}]{escape(line)}[/]" if style else escape(line))
    raise typer.Exit(1)


app.command()(show)
app.command()(check)
app.command()(diff)
