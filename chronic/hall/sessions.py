"""Who is signed in: a random token in an HttpOnly, SameSite cookie; its hash in the database.

A session lasts :data:`SESSION_TTL`; signing out, disabling the account or resetting its
password ends it. FastAPI dependencies carry the visitor into every route.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, delete

from chronic.db import Database
from chronic.hall.security import new_token, token_hash
from models.tables import HallSession, HallUser

SESSION_TTL = timedelta(hours=8)


@dataclass(frozen=True)
class Visitor:
    """The person signed in: an applicant (``person_id``) or a staff account."""

    role: str  # applicant, expert, hospital, clerk, operator
    person_id: int | None = None
    username: str | None = None
    expert_code: str | None = None
    hospital_code: str | None = None

    @property
    def actor(self) -> str:
        """The audit trail's name for this person (never an ID number)."""
        if self.role == "applicant":
            return f"applicant:#{self.person_id}"
        return f"hall:{self.username}"


async def open_session(
    db: Database, *, person_id: int | None = None, user_id: int | None = None
) -> str:
    """A new session; returns the token for the cookie (only its hash is stored)."""
    token = new_token()
    now = datetime.now(UTC)
    async with db.session() as session:
        # Expired sessions go as new ones come: the table holds only live sessions.
        await session.exec(delete(HallSession).where(col(HallSession.expires_at) <= now))
        session.add(
            HallSession(
                token_hash=token_hash(token),
                person_id=person_id,
                user_id=user_id,
                created_at=now,
                expires_at=now + SESSION_TTL,
            )
        )
    return token


async def visitor_of(db: Database, token: str | None) -> Visitor | None:
    """The visitor holding ``token``, or None (no, unknown, expired or disabled session)."""
    if not token or len(token) > 100:
        return None
    async with db.session() as session:
        row = await session.get(HallSession, token_hash(token))
        if row is None or row.expires_at <= datetime.now(UTC):
            return None
        if row.person_id is not None:
            return Visitor(role="applicant", person_id=row.person_id)
        user = await session.get(HallUser, row.user_id)
        if user is None or user.disabled:
            return None
        return Visitor(
            role=user.role,
            username=user.username,
            expert_code=user.expert_code,
            hospital_code=user.hospital_code,
        )


async def close_session(db: Database, token: str | None) -> None:
    if not token:
        return
    async with db.session() as session:
        await session.exec(
            delete(HallSession).where(col(HallSession.token_hash) == token_hash(token))
        )
