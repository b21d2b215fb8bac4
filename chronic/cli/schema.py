"""`chronic schema`: what a valid application form looks like, and which diseases it may name.

The lead registers this sub-app in ``chronic/cli/__init__.py`` as ``chronic schema``; this
module does not register itself. Clerks and hospital integrators use it to write forms:
``chronic schema application`` prints the JSON schema of :class:`ApplicationForm`,
``chronic schema diseases`` lists the disease codes of a region's catalogue, and says when it is
a sample rather than a seed's list (Sanmenxia); ``chronic schema filing`` prints the JSON schema
of an out-of-area care filing (:class:`models.filing.FilingForm`).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from models.application import ApplicationForm
from models.filing import FilingForm
from models.policy import available_regions, load_policy

app = typer.Typer(
    no_args_is_help=True,
    help="Show the JSON schemas of the application and filing forms, and the disease codes.",
)
console = Console()


@app.command()
def application() -> None:
    """Print the JSON schema of an application form (what `examples/*.json` follow)."""
    schema = ApplicationForm.model_json_schema()
    # typer.echo, not rich: the output is meant to be redirected into a file or a tool, and
    # rich would wrap long lines and colour the JSON.
    typer.echo(json.dumps(schema, indent=2, ensure_ascii=False))


@app.command()
def filing() -> None:
    """Print the JSON schema of an out-of-area care filing (`chronic filing submit`)."""
    typer.echo(json.dumps(FilingForm.model_json_schema(), indent=2, ensure_ascii=False))


@app.command()
def diseases(
    region: str = typer.Option(
        "sanmenxia", "--region", "-r", help="Policy profile whose catalogue to list."
    ),
) -> None:
    """List the disease catalogue of a region: the codes a form's `disease_code` may use."""
    try:
        policy = load_policy(region)
    except LookupError:
        console.print(
            f"[red]No policy for region {region!r}.[/] Use one of: {', '.join(available_regions())}"
        )
        raise typer.Exit(2) from None
    table = Table(title=f"{policy.name} ({policy.region}): {len(policy.catalogue)} diseases")
    table.add_column("code", style="bold")
    table.add_column("name")
    table.add_column("category")
    table.add_column("instant track", justify="center")
    for disease in policy.catalogue:
        table.add_row(
            disease.code, disease.name, disease.category, "yes" if disease.instant_track else ""
        )
    console.print(table)
    if policy.catalogue_sample:
        console.print(
            f"[yellow]Sample catalogue[/]: {policy.catalogue_source or 'not from a seed'}. "
            "Replace it with the office's published list before real use."
        )
    elif policy.catalogue_source:
        console.print(f"Catalogue source: {policy.catalogue_source}")
    console.print(
        "Instant-track diseases are decided by one expert's final review; the others need an "
        "initial review and a re-review by two different experts."
    )
