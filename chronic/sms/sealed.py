"""Secret SMS params (a one-time sign-in code) kept in the outbox only sealed.

Sealed with the payload key ring of :mod:`chronic.codec` (AES-256-GCM, the key id travels
with the value), so a database reader sees ``sealed:…`` and nothing else. Whoever holds the
office's codec keys (a test, an operator checking a delivery) can open it again.
"""

from __future__ import annotations

import base64

from temporalio.api.common.v1 import Payload

from chronic.codec import codec_from_settings
from chronic.settings import get_settings

PREFIX = "sealed:"


def seal(value: str) -> str:
    """``value`` encrypted under the current payload key, as ``sealed:<base64>``."""
    codec = codec_from_settings(get_settings())
    payload = codec.encrypt(Payload(data=value.encode()))
    return PREFIX + base64.b64encode(payload.SerializeToString()).decode()


def unseal(sealed: str) -> str:
    """The value :func:`seal` sealed.

    Raises:
        ValueError: not a sealed value; CodecError: no key of the ring opens it.
    """
    if not sealed.startswith(PREFIX):
        raise ValueError("not a sealed value")
    payload = Payload()
    payload.ParseFromString(base64.b64decode(sealed.removeprefix(PREFIX)))
    return codec_from_settings(get_settings()).decrypt(payload).data.decode()


__all__ = ["PREFIX", "seal", "unseal"]
