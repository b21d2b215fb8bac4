"""`chronic expert …`: what a reviewing expert does — see the inbox, accept or decline, decide.

Each action is an Update of the application workflow. Its validator refuses a wrong expert, a
lapsed offer or a second decision before anything is written; the command prints that refusal
as it is and exits 1.

Who acts is in the audit trail, one of two ways:

- by default, the person at the terminal acts **on the expert's behalf** (the expert phoned
  the office, say): recorded as ``operator:<CHRONIC_OPERATOR or login name>`` with
  ``on_behalf: true`` and the expert's code;
- with ``--as-expert``, the expert acts **with their own credentials**: the password of their
  hall account (bound to the expert code) is prompted and checked (argon2, the hall's rate
  limit of the name), and the authenticator code too when the account has a second factor;
  recorded as ``expert:<code>`` with the account, and the terminal's operator alongside.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from chronic.cli.output import (
    ApplicationArg,
    CommandFailed,
    approval,
    console,
    database,
    disease_label,
    errors,
    local,
    next_line,
    office_region,
    operator_reason,
    progress_of,
    run,
    send_update,
    settled_progress,
    temporal,
    zone_of,
)
from models import search_attributes as sa
from models.messages import (
    AcceptOffer,
    Decide,
    DecisionView,
    DeclineOffer,
    OfferView,
    Progress,
    RequestMaterials,
)
from workflows.application import ApplicationWorkflow

if TYPE_CHECKING:
    from chronic.db import Database

app = typer.Typer(
    no_args_is_help=True, help="Review tasks of an expert: inbox, accept, decline, decide."
)

_EXPERT_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

ExpertOption = Annotated[
    str, typer.Option("--expert", "-e", metavar="E", help="Your expert code, e.g. E001.")
]
AsExpertOption = Annotated[
    bool,
    typer.Option(
        "--as-expert",
        help="Act with the expert's own hall credentials (password prompted; the "
        "authenticator code too with a second factor). Without it, the operator acts on the "
        "expert's behalf, recorded as such.",
    ),
]


def _code(expert: str) -> str:
    if not _EXPERT_CODE.match(expert):
        raise CommandFailed(
            f"expert code {expert!r} is not a staff code (letters, digits, - and _ only), e.g. E001"
        )
    return expert


# ---- inbox ------------------------------------------------------------------------------------


@app.command()
def inbox(
    expert: Annotated[str, typer.Argument(metavar="EXPERT", help="Expert code, e.g. E001.")],
) -> None:
    """Applications currently offered to or accepted by EXPERT, with what to do by when."""

    async def main() -> list[Progress]:
        code = _code(expert)
        client = await temporal()
        query = (
            f"{sa.ASSIGNED_EXPERT.name} = '{code}' AND ExecutionStatus = 'Running' "
            f"AND WorkflowType = '{ApplicationWorkflow.__name__}'"
        )
        ids = [execution.id async for execution in client.list_workflows(query)]
        found = await asyncio.gather(*(progress_of(client, i) for i in ids), return_exceptions=True)
        # An application that finished between the listing and the query is simply not shown.
        return [p for p in found if isinstance(p, Progress)]

    open_tasks = [
        p for p in run(main) if p.current_offer is not None and p.current_offer.expert == expert
    ]
    if not open_tasks:
        console.print(f"inbox of {escape(expert)} is empty: no application is offered to you now")
        return
    # One line per task (never wrapped): easy to read, and to grep.
    console.print(f"[bold]inbox of {escape(expert)}[/]: {len(open_tasks)} open")
    for progress in sorted(open_tasks, key=lambda p: p.submitted_at):
        offer = progress.current_offer
        assert offer is not None
        console.print(
            f"  {progress.application_id}  "
            f"{escape(disease_label(progress.region, progress.disease_code))}  "
            f"{offer.stage}  offer #{offer.seq} {offer.status}: {_to_do(offer, progress.region)}"
        )


def _to_do(offer: OfferView, region: str) -> str:
    zone = zone_of(region)
    if offer.status == "pending":
        return f"accept or decline by {local(offer.accept_deadline, zone)}"
    if offer.status == "accepted":
        return f"decide by {local(offer.decision_deadline, zone)}"
    return str(offer.status)


# ---- actions ----------------------------------------------------------------------------------


@app.command()
def accept(
    application: ApplicationArg, expert: ExpertOption, as_expert: AsExpertOption = False
) -> None:
    """Take the review task of APP (受理); the decision deadline starts now."""
    account = _credentials(expert, as_expert)

    async def main() -> OfferView:
        action = AcceptOffer(expert=_code(expert))
        offer = await send_update(
            await temporal(),
            application,
            lambda h: h.execute_update(ApplicationWorkflow.accept, action),
        )
        await _on_behalf("cli_accept", application, expert, account)
        return offer

    offer = run(main)
    # The zone is the application's; the view carries no region, so use the default office's.
    zone = zone_of(office_region())
    console.print(
        f"[bold green]accepted[/] {application} ({offer.stage}); "
        f"decide by {local(offer.decision_deadline, zone)}",
    )


@app.command()
def decline(
    application: ApplicationArg,
    expert: ExpertOption,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (recorded with the strike).")
    ] = None,
    as_expert: AsExpertOption = False,
) -> None:
    """Refuse the review task of APP (不受理); another expert is drawn. Counts as a strike."""
    account = _credentials(expert, as_expert)

    async def main() -> OfferView:
        action = DeclineOffer(expert=_code(expert), reason=reason)
        offer = await send_update(
            await temporal(),
            application,
            lambda h: h.execute_update(ApplicationWorkflow.decline, action),
        )
        await _on_behalf("cli_decline", application, expert, account)
        return offer

    offer = run(main)
    console.print(
        f"[bold]declined[/] {application} ({offer.stage}): {escape(offer.reason or 'declined')}; "
        "another expert is drawn at random"
    )


@app.command()
def decide(
    application: ApplicationArg,
    expert: ExpertOption,
    opinion: Annotated[
        str, typer.Option("--opinion", "-o", help="Your opinion, recorded with the decision.")
    ],
    approve: Annotated[bool, typer.Option("--approve", help="Approve the application.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the application.")] = False,
    as_expert: AsExpertOption = False,
) -> None:
    """Approve or reject APP, which you have accepted (exactly one of --approve / --reject)."""
    approve = approval(approve, reject)
    account = _credentials(expert, as_expert)

    async def main() -> tuple[DecisionView, Progress | None]:
        client = await temporal()
        action = Decide(expert=_code(expert), approve=approve, opinion=opinion)
        decision = await send_update(
            client, application, lambda h: h.execute_update(ApplicationWorkflow.decide, action)
        )
        await _on_behalf("cli_approve" if approve else "cli_reject", application, expert, account)
        return decision, await settled_progress(client, application, _waits_for(expert))

    decision, progress = run(main)
    verb = "approved" if decision.decision == "approve" else "rejected"
    style = "green" if verb == "approved" else "red"
    console.print(f"[bold {style}]{verb}[/] {application} at {decision.stage} by {decision.expert}")
    console.print(next_line(progress, application))


@app.command("request-materials")
def request_materials(
    application: ApplicationArg,
    expert: ExpertOption,
    note: Annotated[
        str, typer.Option("--note", "-n", help="What the applicant must bring, in plain words.")
    ],
    as_expert: AsExpertOption = False,
) -> None:
    """Ask the applicant of APP (which you have accepted) for supplementary materials."""
    account = _credentials(expert, as_expert)

    async def main() -> tuple[OfferView, Progress | None]:
        client = await temporal()
        action = RequestMaterials(expert=_code(expert), note=note)
        offer = await send_update(
            client,
            application,
            lambda h: h.execute_update(ApplicationWorkflow.request_materials, action),
        )
        await _on_behalf("cli_request_materials", application, expert, account)
        return offer, await settled_progress(client, application, _waits_for(expert))

    offer, progress = run(main)
    console.print(f"[bold]materials requested[/] for {application} ({offer.stage}): {escape(note)}")
    console.print(next_line(progress, application))


async def _on_behalf(
    action: str, application_id: str, expert: str, account: str | None = None
) -> None:
    """The audit event of the action: the operator at the terminal acting for ``expert``, or
    (``account``: signed with the expert's credentials) the expert themself, the terminal's
    operator alongside. An expert's actions in the hall are recorded as ``hall:<username>``.
    The action is in the process already; a database that does not answer is said, not made
    a failure of the command."""
    from chronic.actor import operator, record_action, record_as

    try:
        async with database() as db, db.session() as session:
            if account is None:
                await record_action(session, action, application_id, expert=expert, on_behalf=True)
            else:
                await record_as(
                    session,
                    f"expert:{expert}",
                    action,
                    application_id,
                    expert=expert,
                    account=account,
                    via="cli",
                    terminal=operator(),
                )
    except CommandFailed as error:
        errors.print(f"recorded in the process, but not in the audit trail: {error}", markup=False)


def _credentials(expert: str, as_expert: bool) -> str | None:
    """With ``--as-expert``: prompt and check the expert's own credentials, and return the
    username of their hall account (exit 1 when refused). Without: None (on behalf)."""
    if not as_expert:
        return None
    code = _code(expert)
    password: str = typer.prompt(f"password of {code}'s hall account", hide_input=True)

    async def check() -> tuple[str, bool]:
        from sqlmodel import select

        from chronic.hall import totp
        from chronic.hall.accounts import authenticate
        from models.tables import HallUser

        async with database() as db:
            async with db.session() as session:
                bound = (
                    await session.exec(
                        select(HallUser).where(
                            HallUser.expert_code == code, HallUser.role == "expert"
                        )
                    )
                ).first()
            if bound is None:
                raise CommandFailed(
                    f"expert {code} has no hall account to sign with: act on their behalf "
                    f"(without --as-expert), or open one (`chronic user add {code} --expert "
                    f"{code}`)"
                )
            await _count_attempt(db, bound.username)
            async with db.session() as session:
                user = await authenticate(session, bound.username, password)
        if user is None:
            raise CommandFailed(f"wrong password for {bound.username}, or the account is disabled")
        return user.username, totp.enabled(user)

    username, second_factor = run(check)
    if not second_factor:
        return username
    entered: str = typer.prompt("authenticator code", hide_input=True)

    async def verify() -> None:
        from sqlmodel import select

        from chronic.hall import totp
        from models.tables import HallUser

        async with database() as db:
            await _count_attempt(db, username)
            async with db.session() as session:
                user = (
                    await session.exec(select(HallUser).where(HallUser.username == username))
                ).first()
                if user is None or not totp.check_code(user, entered):
                    raise CommandFailed(f"wrong or used authenticator code for {username}")
                session.add(user)

    run(verify)
    return username


async def _count_attempt(db: Database, username: str) -> None:
    """Count a credential check against the hall's limit of the name (and of this terminal)."""
    from chronic.actor import operator
    from chronic.hall.security import hall_key
    from chronic.hall.signin import SignIn, SignInRefused
    from chronic.settings import get_settings

    try:
        await SignIn(db, hall_key(get_settings())).password_attempt(username, f"cli:{operator()}")
    except SignInRefused:
        raise CommandFailed(f"too many sign-in attempts for {username}: try again later") from None


def _waits_for(expert: str) -> Callable[[Progress], bool]:
    """True while the progress still says the expert is to decide (the step is not taken)."""
    return lambda p: p.finished_at is None and p.waiting_for.startswith(f"{expert} to decide")


# ---- the pool (operators) ---------------------------------------------------------------------


@app.command()
def reinstate(
    expert: Annotated[str, typer.Argument(metavar="EXPERT", help="Expert code, e.g. E042.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (audit trail).")],
) -> None:
    """Bring a disqualified or inactive EXPERT back into the pool (strikes reset)."""

    async def main() -> tuple[str, str]:
        from chronic.actor import operator
        from chronic.pool import PoolRefused
        from chronic.pool import reinstate as reinstate_expert

        code, why = _code(expert), operator_reason(reason)
        async with database() as db, db.session() as session:
            try:
                done = await reinstate_expert(session, code, why, operator())
            except PoolRefused as refused:
                raise CommandFailed(str(refused)) from None
        return done.was, await _signal_waiting()

    before, signalled = run(main)
    console.print(f"[bold green]reinstated[/] {expert} (was {before}; strikes reset)")
    console.print(f"  {signalled}")


@app.command()
def enroll(
    code: Annotated[str, typer.Argument(metavar="CODE", help="New expert's staff code.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    hospital: Annotated[str, typer.Option("--hospital", help="Hospital code, e.g. H02.")],
    title: Annotated[
        str, typer.Option("--title", help="intermediate, associate_senior or senior.")
    ],
    categories: Annotated[
        str, typer.Option("--categories", help="Disease categories, comma-separated.")
    ],
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why (audit trail).")
    ] = "enrolled in the expert pool",
    mobile: Annotated[
        str | None,
        typer.Option(
            "--mobile",
            help="The expert's mobile: the offer of each task and its reminder are sent there.",
        ),
    ] = None,
    account: Annotated[
        bool,
        typer.Option(
            "--account",
            help="Also open the expert's hall account (username = CODE); the password is "
            "prompted twice.",
        ),
    ] = False,
) -> None:
    """Add a new expert to the pool (active, no strikes)."""
    password: str | None = None
    if account:
        from chronic.cli.user import prompt_password

        password = prompt_password()

    async def main() -> str:
        from chronic.actor import record_action
        from models.domain import ExpertStatus, ExpertTitle
        from models.policy import load_policy
        from models.tables import Expert, Hospital

        new_code, why = _code(code), operator_reason(reason)
        if not name.strip() or len(name) > 40:
            raise CommandFailed("--name must be 1 to 40 characters")
        phone = None
        if mobile is not None:
            from chronic.sms.phone import InvalidPhoneNumber, to_e164

            try:
                phone = to_e164(mobile)
            except InvalidPhoneNumber as error:
                raise CommandFailed(f"--mobile: {error}") from None
        titles = [t.value for t in ExpertTitle]
        if title not in titles:
            raise CommandFailed(
                f"--title {title!r} is not a title of the pool; one of: " + ", ".join(titles)
            )
        region = office_region()
        known = load_policy(region).categories
        wanted = [c.strip() for c in categories.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in known]
        if not wanted or unknown:
            raise CommandFailed(
                f"--categories {', '.join(unknown) or '(none)'}: not a category of the {region} "
                f"catalogue; one or more of: {', '.join(known)}"
            )
        async with database() as db, db.session() as session:
            place = await session.get(Hospital, hospital)
            if place is None:
                raise CommandFailed(
                    f"--hospital {hospital}: no hospital with this code in the register"
                )
            if not place.public or place.level < 2:
                raise CommandFailed(
                    f"--hospital {hospital} ({place.name}) is not a public hospital of level "
                    "2 or above: its doctors cannot sit in the pool"
                )
            if await session.get(Expert, new_code) is not None:
                raise CommandFailed(
                    f"expert {new_code} exists already; to bring them back, "
                    f"`chronic expert reinstate {new_code} --reason …`"
                )
            session.add(
                Expert(
                    code=new_code,
                    name=name.strip(),
                    hospital_code=hospital,
                    title=ExpertTitle(title),
                    categories=wanted,
                    status=ExpertStatus.ACTIVE,
                    consecutive_strikes=0,
                    region=region,
                    mobile=phone,
                )
            )
            await record_action(
                session,
                "expert_enrolled",
                None,
                reason=why,
                expert=new_code,
                hospital=hospital,
                categories=wanted,
            )
            if password is not None:
                from chronic.hall.accounts import AccountError, Role, add_user

                await session.flush()
                try:
                    await add_user(session, new_code, Role.EXPERT, password, expert_code=new_code)
                except AccountError as error:
                    raise CommandFailed(f"{new_code} not enrolled: {error}") from None
                await record_action(
                    session, "hall_user_added", None, username=new_code, role="expert"
                )
        return await _signal_waiting()

    signalled = run(main)
    console.print(f"[bold green]enrolled[/] {code} at {hospital} for {categories}")
    if account:
        console.print(f"  hall account {code} opened (sign in with the password just set)")
    console.print(f"  {signalled}")


async def _signal_waiting() -> str:
    """Signal ``pool_changed`` to every running application waiting on an exhausted pool."""
    from chronic.pool import signal_waiting

    return await signal_waiting(await temporal())
