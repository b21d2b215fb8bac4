"""`chronic user add|disable|enable|reset`: staff accounts of the hall.

Passwords are prompted (twice, hidden), never taken as arguments, so they stay out of shell
history and process lists. Every change is in the audit trail as the operator.
"""

from __future__ import annotations

from typing import Annotated

import typer

from chronic.cli.output import CommandFailed, console, database, run

app = typer.Typer(no_args_is_help=True, help="Staff accounts of the hall (experts, desks, …).")

UsernameArg = Annotated[str, typer.Argument(metavar="USERNAME", help="Sign-in name, e.g. E042.")]


def prompt_password() -> str:
    """A new password, typed twice without echo."""
    from chronic.hall.accounts import password_problem

    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem:
        raise typer.BadParameter(problem, param_hint="password")
    return password


@app.command()
def add(
    username: UsernameArg,
    role: Annotated[
        str, typer.Option("--role", help="expert, hospital, clerk or operator.")
    ] = "expert",
    expert: Annotated[
        str | None, typer.Option("--expert", "-e", help="The expert code (expert accounts).")
    ] = None,
    hospital: Annotated[
        str | None, typer.Option("--hospital", "-H", help="The hospital (hospital desks).")
    ] = None,
) -> None:
    """Create an account; the password is prompted."""
    from chronic.hall.accounts import Role

    try:
        chosen = Role(role)
    except ValueError:
        raise typer.BadParameter(
            f"{role!r}: one of {', '.join(r.value for r in Role)}", param_hint="--role"
        ) from None
    password = prompt_password()

    async def main() -> None:
        await create_account(username, chosen, password, expert_code=expert, hospital=hospital)

    run(main)
    bound = f", expert {expert}" if expert else f", hospital {hospital}" if hospital else ""
    console.print(f"[bold green]account[/] {username} ({chosen.value}{bound}) created")


async def create_account(
    username: str,
    role: object,
    password: str,
    *,
    expert_code: str | None = None,
    hospital: str | None = None,
) -> None:
    """Create the account and audit it (``CommandFailed`` with the reason when refused)."""
    from chronic.actor import record_action
    from chronic.hall.accounts import AccountError, Role, add_user

    assert isinstance(role, Role)
    async with database() as db, db.session() as session:
        try:
            await add_user(
                session, username, role, password, expert_code=expert_code, hospital_code=hospital
            )
        except AccountError as error:
            raise CommandFailed(f"account {username} not created: {error}") from None
        await record_action(
            session, "hall_user_added", None, username=username, role=role.value, expert=expert_code
        )


def _switch(username: str, disabled: bool) -> None:
    from chronic.actor import record_action
    from chronic.hall.accounts import AccountError, set_disabled

    async def main() -> None:
        async with database() as db, db.session() as session:
            try:
                await set_disabled(session, username, disabled)
            except AccountError as error:
                raise CommandFailed(str(error)) from None
            action = "hall_user_disabled" if disabled else "hall_user_enabled"
            await record_action(session, action, None, username=username)

    run(main)


@app.command()
def disable(username: UsernameArg) -> None:
    """Disable an account: it cannot sign in, and its sessions end now."""
    _switch(username, True)
    console.print(f"[bold]disabled[/] {username}; its sessions are ended")


@app.command()
def enable(username: UsernameArg) -> None:
    """Enable a disabled account again."""
    _switch(username, False)
    console.print(f"[bold green]enabled[/] {username}")


@app.command()
def reset(
    username: UsernameArg,
    totp: Annotated[
        bool,
        typer.Option(
            "--totp",
            help="Clear the account's second factor (a lost authenticator) instead of the "
            "password; the person enrols again after signing in.",
        ),
    ] = False,
) -> None:
    """Set a new password (prompted), or with --totp clear the second factor; the account's
    sessions end."""
    from chronic.actor import record_action
    from chronic.hall.accounts import AccountError, reset_password

    password = None if totp else prompt_password()

    async def main() -> None:
        from sqlmodel import select

        from chronic.hall import totp as second_factor
        from models.tables import HallUser

        async with database() as db, db.session() as session:
            if password is not None:
                try:
                    await reset_password(session, username, password)
                except AccountError as error:
                    raise CommandFailed(str(error)) from None
                await record_action(session, "hall_password_reset", None, username=username)
                return
            user = (
                await session.exec(select(HallUser).where(HallUser.username == username))
            ).first()
            if user is None:
                raise CommandFailed(f"no account {username!r}")
            await second_factor.clear(session, user)
            await record_action(session, "hall_totp_cleared", None, username=username)

    run(main)
    if totp:
        console.print(
            f"[bold green]second factor cleared[/] for {username}; its sessions are ended"
        )
    else:
        console.print(f"[bold green]password reset[/] for {username}; its sessions are ended")
