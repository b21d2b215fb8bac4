"""The office's keys: the applicant HMAC key that keeps ID numbers out of Temporal, and the
key of verifiable expert draws.

A deployment sets ``CHRONIC_APPLICANT_KEY_SECRET``; a development stack gets a random key
generated once into the state folder (``keys/applicant-hmac``), so ``ApplicantKey`` values stay
stable across restarts without anyone handling a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from chronic.settings import Settings


def state_secret(settings: Settings, name: str, *, size: int = 32) -> bytes:
    """A random secret kept in ``<state>/keys/<name>`` (created on first use, mode 0600)."""
    folder = settings.state_path / "keys"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / name
    if not path.exists():
        _write_private(path, secrets.token_hex(size))
    return bytes.fromhex(path.read_text().strip())


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def applicant_key(id_number: str, settings: Settings) -> str:
    """HMAC-SHA256 of an ID number: filterable in the UI, useless without the key."""
    secret = settings.applicant_key_secret
    key = (
        secret.get_secret_value().encode()
        if secret is not None
        else state_secret(settings, "applicant-hmac")
    )
    return hmac.new(key, id_number.upper().encode(), hashlib.sha256).hexdigest()[:32]


def draw_key(settings: Settings) -> bytes:
    """The office's key of verifiable expert draws (models/draw.py)."""
    secret = settings.draw_secret
    if secret is not None:
        return secret.get_secret_value().encode()
    return state_secret(settings, "draw-hmac")
