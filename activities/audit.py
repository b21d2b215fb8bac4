"""The audit trail: one row per action, written in the same transaction as the action itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import AuditEvent


async def record(
    session: AsyncSession,
    *,
    step_key: str,
    application_id: str | None,
    actor: str,
    action: str,
    at: datetime,
    filing_id: str | None = None,
    **detail: Any,
) -> bool:
    """Append an audit event; False when a retried activity already wrote this step.

    ``application_id`` or ``filing_id`` names the case the event is about (neither: the
    register, e.g. an expert enrolled).
    """
    result = await session.exec(
        insert(AuditEvent)
        .values(
            step_key=step_key,
            application_id=application_id,
            filing_id=filing_id,
            actor=actor,
            action=action,
            detail=detail,
            at=at,
        )
        .on_conflict_do_nothing(index_elements=["step_key"])
    )
    return bool(result.rowcount)
