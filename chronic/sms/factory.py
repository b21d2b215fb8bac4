"""Build the gateway a notification worker uses from its settings."""

from __future__ import annotations

from chronic.sms.gateway import LogGateway, SmsGateway
from chronic.sms.settings import SmsSettings


class SmsConfigurationError(RuntimeError):
    """The settings do not describe a usable gateway."""


def build_gateway(settings: SmsSettings | None = None) -> SmsGateway:
    """The gateway chosen by ``CHRONIC_SMS_GATEWAY`` (``log`` unless set).

    Raises:
        SmsConfigurationError: ``aliyun`` is chosen but keys, sign name or template codes are
            missing; the message lists every missing environment variable.
    """
    settings = settings or SmsSettings()
    if settings.gateway == "log":
        return LogGateway()
    problems = settings.aliyun_problems()
    if problems:
        raise SmsConfigurationError(
            "CHRONIC_SMS_GATEWAY=aliyun, but the Aliyun SMS account is not fully configured:\n  "
            + "\n  ".join(problems)
            + "\nSet these variables (or CHRONIC_SMS_GATEWAY=log to only log messages)."
        )
    # Imported here: the SDK pulls in aiohttp and friends, which the log gateway never needs.
    from chronic.sms.aliyun import AliyunGateway

    return AliyunGateway.from_settings(settings)


__all__ = ["SmsConfigurationError", "build_gateway"]
