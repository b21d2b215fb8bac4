"""The SMS gateway interface and the default gateway that only logs.

A gateway sends one templated message to one number. It does not deduplicate, store or retry:
the notification activity writes the outbox row first and Temporal retries, so a gateway stays
a thin adapter over one provider.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from chronic.sms.phone import mask_phone, scrub
from chronic.sms.templates import render_masked
from models.notifications import SmsTemplate

logger = logging.getLogger("chronic.sms")


class SmsSendError(Exception):
    """The provider did not accept a message.

    Attributes:
        retryable: True when trying again later can succeed (throttling, provider or network
            trouble); False when it cannot (invalid number, template or account problem).
        code: The provider's error code (e.g. ``isv.BUSINESS_LIMIT_CONTROL``), if it gave one.
        gateway: Name of the gateway that failed.
    """

    def __init__(
        self, message: str, *, retryable: bool, code: str | None = None, gateway: str = ""
    ) -> None:
        # Provider texts can echo the number; keep digits runs out of everything downstream.
        super().__init__(scrub(message))
        self.retryable = retryable
        self.code = code
        self.gateway = gateway

    @property
    def message(self) -> str:
        return str(self.args[0])


@runtime_checkable
class SmsGateway(Protocol):
    """Sends one templated SMS through one provider."""

    @property
    def name(self) -> str:
        """Short name stored in the outbox (``log``, ``aliyun`` …)."""
        ...

    async def send(self, phone_e164: str, template: SmsTemplate, params: Mapping[str, str]) -> str:
        """Send ``template`` filled with ``params`` to ``phone_e164``.

        Args:
            phone_e164: The recipient, E.164 (``+8613812341234``).
            template: Which message.
            params: Values for every placeholder of the template (extra keys are ignored).

        Returns:
            The provider's message id (Aliyun's BizId).

        Raises:
            SmsSendError: The provider refused or could not be reached.
        """
        ...


class LogGateway:
    """The default gateway: writes the rendered text to the log instead of sending it.

    The number is masked in the log line, and so are secret params (a sign-in code); the
    outbox row (written by the activity) keeps the full number and the text, so a demo shows
    exactly which SMS would have gone out.
    """

    name = "log"

    async def send(self, phone_e164: str, template: SmsTemplate, params: Mapping[str, str]) -> str:
        text = render_masked(template, params)
        message_id = f"log-{uuid.uuid4().hex}"
        logger.info(
            "SMS %s to %s (not sent: log gateway): %s",
            template.value,
            mask_phone(phone_e164),
            text,
            extra={"sms_message_id": message_id},
        )
        return message_id


__all__ = ["LogGateway", "SmsGateway", "SmsSendError"]
