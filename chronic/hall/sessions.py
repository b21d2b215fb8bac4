"""Who is signed in: a random token in an HttpOnly, SameSite cookie; its hash in the database.

A session lasts :data:`SESSION_TTL`; signing out, disabling the account or resetting its
password ends it. FastAPI dependencies carry the visitor into every route.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
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


_VISITOR = (
    select(
        col(HallSession.expires_at),
        col(HallSession.person_id),
        col(HallSession.user_id),
        col(HallUser.role),
        col(HallUser.username),
        col(HallUser.expert_code),
        col(HallUser.hospital_code),
        col(HallUser.disabled),
    )
    .select_from(HallSession)
    .join(HallUser, col(HallUser.id) == col(HallSession.user_id), isouter=True)
    .where(col(HallSession.token_hash) == bindparam("token_hash"))
)
"""A session with its staff account, if any (built once: SQLAlchemy reuses its compiled
form instead of building and hashing a statement per request)."""


async def visitor_of(db: Database, token: str | None) -> Visitor | None:
    """The visitor holding ``token``, or None (no, unknown, expired or disabled session).

    Every request asks, so it is one prebuilt query (:data:`_VISITOR`).
    """
    if not token or len(token) > 100:
        return None
    found = await db.read_row(_VISITOR, {"token_hash": token_hash(token)})
    if found is None:
        return None
    expires_at, person_id, user_id, role, username, expert_code, hospital_code, disabled = found
    if expires_at <= datetime.now(UTC):
        return None
    if person_id is not None:
        return Visitor(role="applicant", person_id=person_id)
    if user_id is None or role is None or disabled:
        return None
    return Visitor(
        role=role,
        username=username,
        expert_code=expert_code,
        hospital_code=hospital_code,
    )


async def close_session(db: Database, token: str | None) -> None:
    if not token:
        return
    async with db.session() as session:
        await session.exec(
            delete(HallSession).where(col(HallSession.token_hash) == token_hash(token))
        )
