"""Who did it: the actor recorded in the audit trail for commands run at the office's desk.

Every action lands in the audit trail with a person. Operator commands (``chronic admin …``,
``chronic sms resend``) act as ``operator:<name>``, the name from ``CHRONIC_OPERATOR`` or else
the login name of whoever runs the command; the office's steps (``chronic office …``) as
``clerk:<name>``.
"""

from __future__ import annotations

import getpass
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from chronic.settings import Settings, get_settings


def operator(settings: Settings | None = None) -> str:
    """``operator:<name>`` for the person running this command."""
    settings = settings or get_settings()
    name = settings.operator
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return f"operator:{name}"[:64]


def clerk(settings: Settings | None = None) -> str:
    """``clerk:<name>`` for the office's clerk running this command (``chronic office …``,
    and the clerk the demo plays for its operator)."""
    return "clerk:" + operator(settings).removeprefix("operator:")


async def record_action(
    session: AsyncSession,
    action: str,
    application_id: str | None,
    *,
    filing_id: str | None = None,
    **detail: Any,
) -> str:
    """One audit event of the operator running this command, in the caller's transaction
    (the one that makes the change, where there is one); returns the operator."""
    actor = operator()
    await record_as(session, actor, action, application_id, filing_id=filing_id, **detail)
    return actor


async def record_as(
    session: AsyncSession,
    actor: str,
    action: str,
    application_id: str | None,
    *,
    filing_id: str | None = None,
    **detail: Any,
) -> None:
    """One audit event of ``actor`` (e.g. a person signed in to the hall: ``hall:zhou``)."""
    from activities import audit

    await audit.record(
        session,
        step_key=f"{action}:{uuid.uuid4().hex}",
        application_id=application_id,
        filing_id=filing_id,
        actor=actor,
        action=action,
        at=datetime.now(UTC),
        **detail,
    )
