"""SMS: the gateway interface, the log and Aliyun gateways, the templates and their settings.

Workers build their gateway with :func:`build_gateway`; the notification activity
(:mod:`activities.notification`) is the only caller of a gateway. The Aliyun gateway is
imported lazily so the log gateway does not load the provider SDK.
"""

from __future__ import annotations

from chronic.sms.factory import SmsConfigurationError, build_gateway
from chronic.sms.gateway import LogGateway, SmsGateway, SmsSendError
from chronic.sms.phone import InvalidPhoneNumber, mask_phone, to_e164
from chronic.sms.settings import SmsSettings
from chronic.sms.templates import TEMPLATES, TemplateSpec, render

__all__ = [
    "TEMPLATES",
    "InvalidPhoneNumber",
    "LogGateway",
    "SmsConfigurationError",
    "SmsGateway",
    "SmsSendError",
    "SmsSettings",
    "TemplateSpec",
    "build_gateway",
    "mask_phone",
    "render",
    "to_e164",
]
