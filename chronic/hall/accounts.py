"""Staff accounts of the hall: experts (bound to their staff code), hospital desks, clerks,
operators. Created, disabled and reset by `chronic user …` and `chronic expert enroll`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chronic.hall.security import DUMMY_HASH, hash_password, verify_password
from models.tables import Expert, HallSession, HallUser, Hospital

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
MIN_PASSWORD = 10


class Role(StrEnum):
    """Who a staff account is (applicants sign in with an SMS code, without an account)."""

    EXPERT = "expert"
    HOSPITAL = "hospital"
    CLERK = "clerk"
    OPERATOR = "operator"


class AccountError(ValueError):
    """An account cannot be made or changed; the message says why in plain words."""


def password_problem(password: str) -> str | None:
    """Why ``password`` is not good enough, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if len(password) > 200:
        return "the password must have at most 200 characters"
    return None


async def add_user(
    session: AsyncSession,
    username: str,
    role: Role,
    password: str,
    *,
    expert_code: str | None = None,
    hospital_code: str | None = None,
) -> HallUser:
    """A new account (in the caller's transaction).

    Raises:
        AccountError: the name is taken or malformed, the password too short, an expert
            account without an expert of the pool (or one that has an account already), a
            hospital account without a hospital of the register.
    """
    if not USERNAME.match(username):
        raise AccountError(
            f"username {username!r}: 2 to 32 letters, digits, '.', '-' or '_' (e.g. E042, zhou)"
        )
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    if await _by_name(session, username) is not None:
        raise AccountError(f"an account {username!r} exists already")
    if role is Role.EXPERT:
        if expert_code is None or await session.get(Expert, expert_code) is None:
            raise AccountError(f"an expert account needs an expert of the pool, not {expert_code}")
        taken = await session.scalar(select(HallUser).where(HallUser.expert_code == expert_code))
        if taken is not None:
            raise AccountError(f"expert {expert_code} has an account already: {taken.username}")
    elif expert_code is not None:
        raise AccountError("only an expert account is bound to an expert code")
    if role is Role.HOSPITAL and (
        hospital_code is None or await session.get(Hospital, hospital_code) is None
    ):
        raise AccountError("a hospital desk account needs a hospital of the register")
    now = datetime.now(UTC)
    user = HallUser(
        username=username,
        role=role.value,
        expert_code=expert_code,
        hospital_code=hospital_code,
        password_hash=hash_password(password),
        disabled=False,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def _by_name(session: AsyncSession, username: str) -> HallUser | None:
    found = await session.exec(select(HallUser).where(HallUser.username == username))
    return found.first()


async def set_disabled(session: AsyncSession, username: str, disabled: bool) -> HallUser:
    """Disable (or enable again) an account; a disabled account's sessions end at once."""
    user = await _existing(session, username)
    user.disabled = disabled
    session.add(user)
    if disabled:
        await session.exec(delete(HallSession).where(col(HallSession.user_id) == user.id))
    return user


async def reset_password(session: AsyncSession, username: str, password: str) -> HallUser:
    """A new password; every session of the account ends."""
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    user = await _existing(session, username)
    user.password_hash = hash_password(password)
    user.password_changed_at = datetime.now(UTC)
    session.add(user)
    await session.exec(delete(HallSession).where(col(HallSession.user_id) == user.id))
    return user


async def _existing(session: AsyncSession, username: str) -> HallUser:
    user = await _by_name(session, username)
    if user is None:
        raise AccountError(f"no account {username!r}")
    return user


async def authenticate(session: AsyncSession, username: str, password: str) -> HallUser | None:
    """The enabled account with this name and password, else None (same work either way)."""
    user = await _by_name(session, username) if USERNAME.match(username) else None
    if user is None:
        verify_password(password, DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash) or user.disabled:
        return None
    return user
