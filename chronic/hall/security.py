"""The hall's secrets: its key, session tokens, CSRF tokens, keyed hashes and passwords.

Nothing secret is stored as it is: session tokens and sign-in codes are kept as hashes
(sign-in codes keyed, as six digits are quickly guessed from a plain hash), rate-limit counts
by a keyed hash of the ID number or address, passwords as argon2 hashes (pwdlib).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from pwdlib import PasswordHash

from chronic.privacy import state_secret
from chronic.settings import Settings

SESSION_COOKIE = "chronic_hall"
CSRF_COOKIE = "chronic_hall_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

_passwords = PasswordHash.recommended()  # argon2id


def hall_key(settings: Settings) -> bytes:
    """The hall's key (``CHRONIC_HALL_SECRET``, else generated into the state folder)."""
    if settings.hall_secret is not None:
        return settings.hall_secret.get_secret_value().encode()
    return state_secret(settings, "hall-hmac")


def keyed(key: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` for one ``purpose`` (hex): comparable, useless without the key."""
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def new_token() -> str:
    """A random token for a cookie (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(key: bytes, csrf_cookie: str) -> str:
    """The CSRF token of a browser: bound to its CSRF cookie, which another site cannot read."""
    return keyed(key, "csrf", csrf_cookie)


def csrf_valid(key: bytes, csrf_cookie: str | None, token: str | None) -> bool:
    """True when ``token`` is the CSRF token of the browser holding ``csrf_cookie``."""
    if not csrf_cookie or not token:
        return False
    return hmac.compare_digest(csrf_token(key, csrf_cookie), token)


def new_code() -> str:
    """A six-digit one-time code."""
    return f"{secrets.randbelow(1_000_000):06d}"


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    return _passwords.verify(password, hashed)


DUMMY_HASH = hash_password(secrets.token_hex(16))
"""Verified against when the username is unknown, so both cases take as long."""


def safe_next(value: object) -> str | None:
    """Where a sign-in may send the visitor on: a local path of the hall only, else None.

    A ``next`` parameter (the page a visitor without a session was sent away from, e.g. an
    SMS link) is honoured only as a path on this host: one leading ``/``, not ``//`` (another
    host to a browser), no backslash (``/\\`` is ``//`` to some browsers), no scheme or host,
    no control character or space (browsers drop tabs and newlines, so ``/\\t/evil`` would be
    ``//evil``), and not the sign-in pages themselves.
    """
    if not isinstance(value, str) or not 1 <= len(value) <= 500:
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    if parts.path in ("/login", "/logout") or parts.path.startswith("/login/"):
        return None
    return value
