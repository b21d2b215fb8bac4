"""Applicants sign in with their ID number and a one-time code sent by SMS to the mobile on
the insurance register; staff with a username and password. Both are rate-limited.

The code goes out through the product's own SMS path (an ``SmsDelivery`` workflow, the outbox
with its dedup key): the database keeps only a keyed hash of it, the outbox keeps it sealed,
logs show it masked. A code expires after :data:`CODE_TTL`, dies after :data:`CODE_ATTEMPTS`
wrong tries, and works once. The answer to a code request never says whether an ID number is
on the register.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from chronic.db import Database
from chronic.hall.security import keyed, new_code
from chronic.sms.delivery import start_delivery
from models.application import ResidentIdNumber
from models.notifications import SmsRequest, SmsTemplate
from models.tables import HallThrottle, InsuredPerson, SignInCode

CODE_TTL = timedelta(minutes=5)
CODE_ATTEMPTS = 5
"""Wrong tries after which a code is dead (a new one must be asked for)."""


@dataclass(frozen=True)
class Limit:
    """At most ``count`` events of ``kind`` per key within ``window``."""

    kind: str
    count: int
    window: timedelta


CODE_PER_ID = Limit("code_per_id", 5, timedelta(hours=1))
CODE_GAP_PER_ID = Limit("code_per_id", 1, timedelta(seconds=60))
CODE_PER_ADDRESS = Limit("code_per_address", 20, timedelta(hours=1))
WRONG_CODE_PER_ID = Limit("wrong_code_per_id", 10, timedelta(hours=1))
WRONG_CODE_PER_ADDRESS = Limit("wrong_code_per_address", 30, timedelta(hours=1))
PASSWORD_PER_NAME = Limit("password_per_name", 10, timedelta(minutes=15))
PASSWORD_PER_ADDRESS = Limit("password_per_address", 60, timedelta(hours=1))

KEEP = timedelta(days=1)
"""Rate-limit counts and codes are deleted once this old (longer than every window)."""

TOO_MANY = "尝试次数过多，请稍后再试。"
CODE_SENT = "如该身份证号已参保登记，验证码已发送至登记的手机号码，5分钟内有效。"
WRONG_CODE = "验证码错误或已过期，请重新获取。"
WRONG_PASSWORD = "用户名或密码错误。"
SMS_UNAVAILABLE = "短信暂时无法发送，请稍后再试。"
NOT_AN_ID_NUMBER = "请输入正确的18位居民身份证号码。"


class SignInRefused(Exception):
    """The request is refused; the message is for the person, in Chinese."""


_ID_NUMBER: TypeAdapter[str] = TypeAdapter(ResidentIdNumber)


def normalised_id_number(raw: str) -> str | None:
    """The ID number as the register has it (upper-case X), or None when it is not one.

    The form's own rule (check digit and birth date), not ``ric.validate``: that also looks the
    county up in stdnum's table, which lacks districts such as Wuhan's 武昌区 (420106) and
    would keep real people out of the hall.
    """
    value = raw.strip().replace(" ", "").upper()
    if len(value) != 18:
        return None
    try:
        return _ID_NUMBER.validate_python(value)
    except ValidationError:
        return None


async def _count(session: AsyncSession, limit: Limit, key: str, now: datetime) -> int:
    counted = await session.scalar(
        select(func.count())
        .select_from(HallThrottle)
        .where(
            HallThrottle.kind == limit.kind,
            HallThrottle.key == key,
            col(HallThrottle.at) > now - limit.window,
        )
    )
    return int(counted or 0)


async def _over(session: AsyncSession, checks: list[tuple[Limit, str]], now: datetime) -> bool:
    """True when any limit is reached. The first key is locked for the transaction, so two
    requests at once for one ID number or username are counted one after the other."""
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": checks[0][1]}
    )
    for limit, key in checks:
        if await _count(session, limit, key, now) >= limit.count:
            return True
    return False


def _count_one(session: AsyncSession, kind: str, key: str, now: datetime) -> None:
    session.add(HallThrottle(kind=kind, key=key, at=now))


@dataclass(frozen=True)
class SignIn:
    """Keys and connections of the sign-in paths."""

    db: Database
    key: bytes

    def _id_key(self, id_number: str) -> str:
        return keyed(self.key, "id", id_number)

    def _address_key(self, address: str) -> str:
        return keyed(self.key, "address", address)

    def _code_hash(self, person_id: int, code: str) -> str:
        return keyed(self.key, f"code:{person_id}", code)

    async def request_code(self, client: Client, raw_id_number: str, address: str) -> str:
        """Send a code to the register's mobile of the person; the message to show.

        Raises:
            SignInRefused: not an ID number, or too many requests for it or from the address.
        """
        id_number = normalised_id_number(raw_id_number)
        if id_number is None:
            raise SignInRefused(NOT_AN_ID_NUMBER)
        now = datetime.now(UTC)
        id_key, address_key = self._id_key(id_number), self._address_key(address)
        async with self.db.session() as session:
            if await _over(
                session,
                [(CODE_GAP_PER_ID, id_key), (CODE_PER_ID, id_key), (CODE_PER_ADDRESS, address_key)],
                now,
            ):
                raise SignInRefused(TOO_MANY)
            # Counts older than every window and dead codes are of no use any more.
            await session.exec(delete(HallThrottle).where(col(HallThrottle.at) < now - KEEP))
            await session.exec(delete(SignInCode).where(col(SignInCode.expires_at) < now - KEEP))
            _count_one(session, CODE_PER_ID.kind, id_key, now)
            _count_one(session, CODE_PER_ADDRESS.kind, address_key, now)
            person_id = await session.scalar(
                select(InsuredPerson.id).where(InsuredPerson.id_number == id_number)
            )
            if person_id is None:
                return CODE_SENT  # the same answer: the register is not for probing
            code = new_code()
            row = SignInCode(
                person_id=person_id,
                code_hash=self._code_hash(person_id, code),
                created_at=now,
                expires_at=now + CODE_TTL,
                attempts=0,
            )
            # An earlier code of the person stops working when a new one is sent.
            await session.exec(
                update(SignInCode)
                .where(col(SignInCode.person_id) == person_id, col(SignInCode.used_at).is_(None))
                .values(used_at=now)
            )
            session.add(row)
        request = SmsRequest(
            dedup_key=f"sign-in:{uuid.uuid4().hex}",
            template=SmsTemplate.SIGN_IN_CODE,
            person_id=person_id,
            params={"code": code, "minutes": str(int(CODE_TTL.total_seconds() // 60))},
        )
        try:
            await start_delivery(client, request)
        except RPCError:
            raise SignInRefused(SMS_UNAVAILABLE) from None
        return CODE_SENT

    async def verify_code(self, raw_id_number: str, code: str, address: str) -> int:
        """The person's row id when ``code`` is their live code.

        Raises:
            SignInRefused: wrong, expired, used or dead code, or too many wrong codes.
        """
        id_number = normalised_id_number(raw_id_number)
        if id_number is None:
            raise SignInRefused(NOT_AN_ID_NUMBER)
        now = datetime.now(UTC)
        id_key, address_key = self._id_key(id_number), self._address_key(address)
        code = code.strip()
        async with self.db.session() as session:
            if await _over(
                session, [(WRONG_CODE_PER_ID, id_key), (WRONG_CODE_PER_ADDRESS, address_key)], now
            ):
                raise SignInRefused(TOO_MANY)
            person_id = await session.scalar(
                select(InsuredPerson.id).where(InsuredPerson.id_number == id_number)
            )
            live = None
            if person_id is not None:
                live = (
                    await session.exec(
                        select(SignInCode)
                        .where(
                            SignInCode.person_id == person_id,
                            col(SignInCode.used_at).is_(None),
                            col(SignInCode.expires_at) > now,
                            col(SignInCode.attempts) < CODE_ATTEMPTS,
                        )
                        .order_by(col(SignInCode.id).desc())
                        .with_for_update()
                    )
                ).first()
            if (
                live is not None
                and person_id is not None
                and code.isdigit()
                and hmac.compare_digest(live.code_hash, self._code_hash(person_id, code))
            ):
                live.used_at = now
                session.add(live)
                return person_id
            if live is not None:
                live.attempts += 1
                session.add(live)
            _count_one(session, WRONG_CODE_PER_ID.kind, id_key, now)
            _count_one(session, WRONG_CODE_PER_ADDRESS.kind, address_key, now)
        raise SignInRefused(WRONG_CODE)

    async def password_attempt(self, username: str, address: str) -> None:
        """Count a password sign-in before the password is checked, so attempts made at once
        are counted too; raises SignInRefused when the name or the address has tried too
        often (successful sign-ins count as well: a person signs in a few times a day)."""
        now = datetime.now(UTC)
        name_key = keyed(self.key, "user", username)
        address_key = self._address_key(address)
        async with self.db.session() as session:
            if await _over(
                session,
                [(PASSWORD_PER_NAME, name_key), (PASSWORD_PER_ADDRESS, address_key)],
                now,
            ):
                raise SignInRefused(TOO_MANY)
            _count_one(session, PASSWORD_PER_NAME.kind, name_key, now)
            _count_one(session, PASSWORD_PER_ADDRESS.kind, address_key, now)
