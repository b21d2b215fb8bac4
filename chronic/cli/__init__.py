"""The `chronic` command line.

Each command's module is imported only when that command runs (or when help lists them all):
a `chronic status` or `chronic worker review` process then loads what it uses, not the demo's
Faker, the bench driver and every other command's dependencies. Tests, the dev stack and the
operator all start many short `chronic` processes, so that import time is paid often.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

# name → (module, attribute): a Typer app (a group of commands) or one command's function.
# The order is the order of `chronic --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "worker": ("chronic.cli.worker", "worker"),
    "submit": ("chronic.cli.applications", "submit"),
    "resubmit": ("chronic.cli.applications", "resubmit"),
    "status": ("chronic.cli.applications", "status"),
    "demo": ("chronic.cli.demo", "demo"),
    "bench": ("chronic.cli.bench", "bench"),
    "codec-server": ("chronic.cli.codec", "codec_server"),
    "hall": ("chronic.cli.hall", "hall"),
    "hall-load": ("chronic.cli.hall", "hall_load"),
    "dev": ("chronic.cli.dev", "app"),
    "db": ("chronic.cli.db", "app"),
    "seed": ("chronic.cli.seed", "app"),
    "expert": ("chronic.cli.expert", "app"),
    "office": ("chronic.cli.office", "office"),
    "hospital": ("chronic.cli.office", "hospital"),
    "filing": ("chronic.cli.filing", "app"),
    "benefit": ("chronic.cli.benefit", "app"),
    "policy": ("chronic.cli.policy", "app"),
    "audit": ("chronic.cli.audit", "app"),
    "report": ("chronic.cli.report", "app"),
    "schedule": ("chronic.cli.schedule", "app"),
    "admin": ("chronic.cli.admin", "app"),
    "schema": ("chronic.cli.schema", "app"),
    "settlement": ("chronic.cli.settlement", "app"),
    "sms": ("chronic.cli.sms", "app"),
    "user": ("chronic.cli.user", "app"),
}


# Typer vendors its own click (typer._click, private): its types are spelled Any here.
def load_command(name: str) -> Any:
    """The click command ``name``, its module imported now; None for an unknown name."""
    if name not in COMMANDS:
        return None
    module, attribute = COMMANDS[name]
    target: Any = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name=name)(target)
    return typer.main.get_command(single)


class _LazyCommands(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return load_command(cmd_name)


app = typer.Typer(no_args_is_help=True, cls=_LazyCommands)


@app.callback()
def _chronic() -> None:
    """Chronic-condition benefit applications on Temporal."""


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
