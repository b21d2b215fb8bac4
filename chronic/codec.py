"""Payload encryption: nothing personal is readable in Temporal's history.

Every payload the product hands to Temporal (workflow and activity inputs and results, signals,
updates, queries, memos, failure details) goes through :class:`EncryptionCodec`: AES-256-GCM
over the serialized original ``Payload``. The encrypted payload carries two metadata entries,
``encoding=binary/encrypted`` and ``encryption-key-id=<id>``; its data is a fresh 12-byte nonce
followed by the ciphertext (with GCM's 16-byte tag). The failure converter moves failure
messages and stack traces into an encoded payload, so an exception that mentions an ID number
is encrypted too.

Keys form a :class:`KeyRing`: the current key encrypts, every key in the ring decrypts, so a
key is rotated by adding a new one, making it current, and keeping the old one for as long as
histories written with it must stay readable. Payloads without the encrypted encoding pass
through unchanged, so histories from before encryption still decode.

Keys come from ``CHRONIC_CODEC_KEYS`` (JSON ``{"2026-11": "<base64 of 32 bytes>", …}``) and
``CHRONIC_CODEC_CURRENT_KEY_ID``. Without them a development key is generated once into the
state folder (``keys/payload-key-dev``, key id ``dev-1``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from chronic.privacy import state_secret
from chronic.settings import Settings

ENCODING = b"binary/encrypted"
"""``encoding`` metadata of an encrypted payload."""
KEY_ID_METADATA = "encryption-key-id"
"""Metadata entry naming the key that encrypted a payload."""
NONCE_SIZE = 12
KEY_SIZE = 32
DEV_KEY_ID = "dev-1"
DEV_KEY_NAME = "payload-key-dev"


class CodecError(ValueError):
    """A payload could not be decrypted (unknown key, wrong key material, damaged data)."""


class UnknownKeyError(CodecError):
    """A payload was encrypted with a key this process does not have."""

    def __init__(self, key_id: str, known: Sequence[str]) -> None:
        self.key_id = key_id
        known_text = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"payload was encrypted with key id {key_id!r}, which is not in the key ring "
            f"(known key ids: {known_text}); add that key to CHRONIC_CODEC_KEYS to read it"
        )


class CodecSettings(BaseSettings):
    """Settings of the payload codec and the codec server (``CHRONIC_CODEC_`` prefix)."""

    model_config = SettingsConfigDict(
        env_prefix="CHRONIC_CODEC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='AES-256 keys by key id, as JSON: {"2026-11": "<base64 of 32 bytes>"}. '
        "Every key decrypts; keep retired keys as long as their histories must stay readable. "
        "Empty: a development key generated into the state folder (key id dev-1).",
    )
    current_key_id: str | None = Field(
        default=None,
        description="The key id that encrypts new payloads; may be omitted with a single key.",
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the codec server. Unset: generated once into the state "
        "folder (keys/codec-token).",
    )
    ui_origins: list[str] | None = Field(
        default=None,
        description="Browser origins allowed to call the codec server (CORS), as JSON. Unset: "
        "the dev server's Web UI, http://localhost:<ui port> and http://127.0.0.1:<ui port>.",
    )


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """AES-256 keys by id; ``current`` encrypts, all of them decrypt."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(
                f"current key id {self.current!r} is not in the key ring "
                f"(key ids: {', '.join(sorted(self.keys)) or 'none'})"
            )
        for key_id, key in self.keys.items():
            if not key_id:
                raise ValueError("a key id must not be empty")
            if len(key) != KEY_SIZE:
                raise ValueError(
                    f"key {key_id!r} is {len(key)} bytes long; AES-256 needs {KEY_SIZE}"
                )

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(key_ids={sorted(self.keys)!r}, current={self.current!r})"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole serialized payloads, with a rotating key ring."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._ciphers)

    @property
    def current_key_id(self) -> str:
        return self._ring.current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """The payload encrypted with the current key."""
        key_id = self._ring.current
        nonce = os.urandom(NONCE_SIZE)
        ciphertext = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + ciphertext,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; payloads that are not encrypted are returned as they are."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_key_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_key_id is None:
            raise CodecError(f"encrypted payload without {KEY_ID_METADATA!r} metadata")
        key_id = raw_key_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(key_id, list(self._ciphers))
        if len(payload.data) < NONCE_SIZE + 16:
            raise CodecError(f"encrypted payload (key id {key_id!r}) is too short")
        nonce, ciphertext = payload.data[:NONCE_SIZE], payload.data[NONCE_SIZE:]
        try:
            plaintext = cipher.decrypt(nonce, ciphertext, None)
        except InvalidTag:
            raise CodecError(
                f"payload encrypted with key id {key_id!r} failed authentication: the key "
                "configured under that id is not the one that encrypted it, or the data "
                "was altered"
            ) from None
        original = Payload()
        original.ParseFromString(plaintext)
        return original


def decode_key(key_id: str, text: str, setting: str = "CHRONIC_CODEC_KEYS") -> bytes:
    """The 32 bytes of a base64 key of ``setting`` (ValueError saying how to make one)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{setting}: key {key_id!r} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise ValueError(
            f"{setting}: key {key_id!r} decodes to {len(key)} bytes; "
            f"AES-256 needs {KEY_SIZE} (generate one with: "
            'python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())")'
        )
    return key


def key_ring_from_settings(
    settings: Settings, codec_settings: CodecSettings | None = None
) -> KeyRing:
    """The configured key ring, or the development key of the state folder."""
    codec_settings = codec_settings if codec_settings is not None else CodecSettings()
    return configured_key_ring(
        codec_settings.keys,
        codec_settings.current_key_id,
        prefix="CHRONIC_CODEC",
        encrypts="payloads",
        development=lambda: state_secret(settings, DEV_KEY_NAME),
    )


def configured_key_ring(
    keys: Mapping[str, SecretStr],
    current: str | None,
    *,
    prefix: str,
    encrypts: str,
    development: Callable[[], bytes],
) -> KeyRing:
    """The ring of ``{prefix}_KEYS`` and ``{prefix}_CURRENT_KEY_ID`` (the payload codec's, the
    stored documents'), or the ``development`` key under id ``dev-1`` when no key is set.

    Raises:
        ValueError: a key that is not 32 bytes of base64, or no clear current key.
    """
    keys_setting, current_setting = f"{prefix}_KEYS", f"{prefix}_CURRENT_KEY_ID"
    if not keys:
        if current not in (None, DEV_KEY_ID):
            raise ValueError(f"{current_setting} is {current!r} but {keys_setting} is empty")
        return KeyRing({DEV_KEY_ID: development()}, DEV_KEY_ID)
    decoded = {
        key_id: decode_key(key_id, secret.get_secret_value(), keys_setting)
        for key_id, secret in keys.items()
    }
    ids = ", ".join(sorted(decoded))
    if current is None:
        if len(decoded) != 1:
            raise ValueError(
                f"{current_setting} must name the key that encrypts new {encrypts} (key ids: {ids})"
            )
        (current,) = decoded
    if current not in decoded:
        raise ValueError(
            f"{current_setting} {current!r} is not a key of {keys_setting} (key ids: {ids})"
        )
    return KeyRing(decoded, current)


def codec_from_settings(
    settings: Settings, codec_settings: CodecSettings | None = None
) -> EncryptionCodec:
    return EncryptionCodec(key_ring_from_settings(settings, codec_settings))


def encrypted_data_converter(
    settings: Settings,
    codec_settings: CodecSettings | None = None,
    *,
    codec: PayloadCodec | None = None,
) -> DataConverter:
    """The pydantic data converter with encrypted payloads and encrypted failure messages."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec if codec is not None else codec_from_settings(settings, codec_settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
