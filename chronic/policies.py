"""Editions of the rules kept by digest (``policy_version``).

Submission keeps the edition an application is decided by before the application row names
it; the reconciler starts a deferred workflow with that same edition (not whatever the
profile says by then); `chronic policy show --application` prints it for anyone who asks
which rules a case was decided by.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.policy import PolicyProfile
from models.tables import PolicyVersion


async def keep_edition(session: AsyncSession, policy: PolicyProfile, now: datetime) -> str:
    """Store ``policy`` under its digest unless it is there already; returns the digest."""
    digest = policy.digest
    await session.execute(
        insert(PolicyVersion)
        .values(
            digest=digest,
            region=policy.region,
            version=policy.version,
            profile=policy.model_dump(mode="json"),
            first_used_at=now,
        )
        .on_conflict_do_nothing(index_elements=["digest"])
    )
    return digest


async def edition(session: AsyncSession, digest: str) -> PolicyProfile | None:
    """The kept edition with ``digest`` (a unique prefix of it will do), or None."""
    rows = (
        await session.scalars(
            sa.select(PolicyVersion).where(col(PolicyVersion.digest).startswith(digest)).limit(2)
        )
    ).all()
    if len(rows) != 1:
        return None
    return PolicyProfile.model_validate(rows[0].profile)
