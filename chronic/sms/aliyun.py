"""Alibaba Cloud SMS (Dysmsapi 2017-05-25) through the official SDK.

The SDK (``alibabacloud-dysmsapi20170525``) has a native async variant,
``Client.send_sms_with_options_async``, which does its HTTP through aiohttp; we await it
directly, so no thread is needed and a worker's event loop is never blocked. The SDK's own
retries stay off (its async retry loop sleeps with ``time.sleep``); Temporal's retry policy on
the activity does the retrying, with the outbox row guarding against double sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import phonenumbers
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_dysmsapi20170525.models import SendSmsRequest
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions
from Tea.exceptions import UnretryableException

from chronic.sms.gateway import SmsSendError
from chronic.sms.settings import SmsSettings
from chronic.sms.templates import spec, template_values
from models.notifications import SmsTemplate

# Answers after which the same message can go through later: flow control (per number per
# minute/hour/day), provider-side failures and an exhausted balance an operator can top up.
RETRYABLE_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL",
        "isv.BUSINESS_LIMIT_HOUR",
        "isv.BUSINESS_LIMIT_DAY",
        "BUSINESS_LIMIT_CONTROL_MINUTE",
        "BUSINESS_LIMIT_CONTROL_PHONE",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.DATA_NOT_EXIST",
        "isp.SYSTEM_ERROR",
        "isp.GATEWAY_ERROR",
        "isp.UNKNOWN",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "ServiceUnavailable",
        "InternalError",
        "SignatureNonceUsed",
    }
)

# Answers that say the number itself cannot receive this SMS: a person must correct it.
INVALID_NUMBER_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.PHONE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.NOT_SUPPORTED_COUNTRY",
        "isv.COUNTRY_RESTRICTED",
    }
)

# Every other code (template, sign name, parameters, keys, permissions) is a configuration
# problem that retrying cannot fix, so it is not retryable either.


def aliyun_phone_number(phone_e164: str) -> str:
    """``PhoneNumbers`` as Aliyun wants it: mainland numbers without +86, others with the
    country code but no plus sign."""
    parsed = phonenumbers.parse(phone_e164, None)
    national = str(parsed.national_number)
    return national if parsed.country_code == 86 else f"{parsed.country_code}{national}"


class AliyunGateway:
    """Sends SMS through Alibaba Cloud's SendSms API."""

    name = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_codes: Mapping[SmsTemplate, str],
        endpoint: str = "dysmsapi.aliyuncs.com",
        protocol: str = "https",
        connect_timeout_ms: int = 5_000,
        read_timeout_ms: int = 10_000,
    ) -> None:
        self._sign_name = sign_name
        self._template_codes = dict(template_codes)
        self._endpoint = endpoint
        self._client = Client(
            Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=endpoint,
                protocol=protocol,
                connect_timeout=connect_timeout_ms,
                read_timeout=read_timeout_ms,
            )
        )

    @classmethod
    def from_settings(cls, settings: SmsSettings) -> AliyunGateway:
        """A gateway from complete settings (see :func:`chronic.sms.build_gateway`)."""
        problems = settings.aliyun_problems()
        if problems:
            raise ValueError("Aliyun SMS settings are incomplete: " + "; ".join(problems))
        assert settings.aliyun_access_key_id and settings.aliyun_access_key_secret
        assert settings.aliyun_sign_name
        codes = {t: code for t in SmsTemplate if (code := settings.template_code(t))}
        return cls(
            access_key_id=settings.aliyun_access_key_id.get_secret_value(),
            access_key_secret=settings.aliyun_access_key_secret.get_secret_value(),
            sign_name=settings.aliyun_sign_name,
            template_codes=codes,
            endpoint=settings.aliyun_endpoint,
            protocol=settings.aliyun_protocol,
            connect_timeout_ms=settings.aliyun_connect_timeout_ms,
            read_timeout_ms=settings.aliyun_read_timeout_ms,
        )

    async def send(self, phone_e164: str, template: SmsTemplate, params: Mapping[str, str]) -> str:
        code = self._template_codes.get(template)
        if code is None:
            raise SmsSendError(
                f"no Aliyun template code configured for {template.value!r}; set "
                f"{spec(template).env_var}",
                retryable=False,
                gateway=self.name,
            )
        request = SendSmsRequest(
            phone_numbers=aliyun_phone_number(phone_e164),
            sign_name=self._sign_name,
            template_code=code,
            template_param=json.dumps(template_values(template, params), ensure_ascii=False),
        )
        try:
            response = await self._client.send_sms_with_options_async(request, RuntimeOptions())
        except AlibabaCloudException as exc:
            # HTTP 4xx/5xx: signature, keys, API-level throttling, provider outage.
            retryable = (
                isinstance(exc, ThrottlingException | ServerException)
                or (exc.status_code or 0) >= 500
                or exc.code in RETRYABLE_CODES
            )
            raise self._error(exc.code, exc.message, retryable=retryable) from None
        except (UnretryableException, OSError) as exc:
            # The SDK wraps network failures (refused, reset, timed out) in this exception.
            raise SmsSendError(
                f"could not reach Aliyun SMS at {self._endpoint}: {exc}",
                retryable=True,
                gateway=self.name,
            ) from None
        body = response.body
        if body is None:
            raise SmsSendError(
                "Aliyun SMS answered without a body", retryable=True, gateway=self.name
            )
        if body.code == "OK":
            return str(body.biz_id or body.request_id)
        raise self._error(body.code, body.message, retryable=body.code in RETRYABLE_CODES)

    def _error(self, code: str | None, message: str | None, *, retryable: bool) -> SmsSendError:
        detail = f"{code}: {message}" if message else str(code)
        if code in INVALID_NUMBER_CODES:
            text = f"Aliyun SMS refused the recipient's number ({detail}); correct the mobile"
        elif retryable:
            text = f"Aliyun SMS cannot take the message right now ({detail}); will retry"
        else:
            text = (
                f"Aliyun SMS refused the message ({detail}); check the sign name, template "
                "codes and access keys in the CHRONIC_SMS_ALIYUN_* settings"
            )
        return SmsSendError(text, retryable=retryable, code=code, gateway=self.name)


__all__ = ["INVALID_NUMBER_CODES", "RETRYABLE_CODES", "AliyunGateway", "aliyun_phone_number"]
