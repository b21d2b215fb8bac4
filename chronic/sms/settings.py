"""SMS settings, read from the environment (``CHRONIC_SMS_`` prefix) and ``.env``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from chronic.sms.templates import TEMPLATES
from models.notifications import SmsTemplate


class SmsSettings(BaseSettings):
    """Which SMS gateway a notification worker uses, and the provider's account details."""

    model_config = SettingsConfigDict(
        env_prefix="CHRONIC_SMS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    gateway: Literal["log", "aliyun"] = Field(
        default="log",
        description="log: write each SMS to the outbox and the log only (default, demos and "
        "tests). aliyun: send through Alibaba Cloud SMS (Dysmsapi).",
    )

    aliyun_access_key_id: SecretStr | None = Field(
        default=None, description="AccessKey ID of a RAM user allowed to call dysmsapi:SendSms."
    )
    aliyun_access_key_secret: SecretStr | None = Field(default=None)
    aliyun_sign_name: str | None = Field(
        default=None, description="Approved SMS signature (签名), e.g. the office's name."
    )
    aliyun_endpoint: str = Field(
        default="dysmsapi.aliyuncs.com", description="Host[:port] of the Dysmsapi endpoint."
    )
    aliyun_protocol: Literal["https", "http"] = Field(
        default="https", description="http only for a local stand-in of the API in tests."
    )
    aliyun_connect_timeout_ms: int = Field(default=5_000, gt=0)
    aliyun_read_timeout_ms: int = Field(
        default=10_000,
        gt=0,
        description="Keep below the activity's start-to-close timeout: the outbox row stays "
        "locked while the provider answers.",
    )

    # One Aliyun template code (SMS_…) per template; the text to register for each is in
    # chronic.sms.templates.TEMPLATES.
    aliyun_template_submitted: str | None = None
    aliyun_template_returned: str | None = None
    aliyun_template_materials_requested: str | None = None
    aliyun_template_approved: str | None = None
    aliyun_template_rejected: str | None = None
    aliyun_template_closed: str | None = None
    aliyun_template_examination_scheduled: str | None = None
    aliyun_template_expert_disqualified: str | None = None
    aliyun_template_benefit_revoked: str | None = None
    aliyun_template_expert_month_report: str | None = None
    aliyun_template_filing_filed: str | None = None
    aliyun_template_filing_refused: str | None = None
    aliyun_template_filing_closed: str | None = None
    aliyun_template_benefit_designation_changed: str | None = None
    aliyun_template_benefit_suspended: str | None = None
    aliyun_template_benefit_resumed: str | None = None
    aliyun_template_benefit_ending: str | None = None
    aliyun_template_benefit_ended: str | None = None
    aliyun_template_benefit_renewed: str | None = None
    aliyun_template_sign_in_code: str | None = None
    aliyun_template_expert_offer: str | None = None
    aliyun_template_expert_offer_reminder: str | None = None

    def template_code(self, template: SmsTemplate) -> str | None:
        """The Aliyun template code configured for ``template`` (None when unset)."""
        code: str | None = getattr(self, TEMPLATES[template].code_setting)
        return code or None

    def aliyun_problems(self) -> list[str]:
        """What is missing for the Aliyun gateway, one line per environment variable."""
        problems = [
            f"CHRONIC_SMS_{name.upper()} is not set"
            for name in ("aliyun_access_key_id", "aliyun_access_key_secret", "aliyun_sign_name")
            if not _present(getattr(self, name))
        ]
        problems += [
            f"{TEMPLATES[t].env_var} is not set (Aliyun template code for {t.value!r})"
            for t in SmsTemplate
            if self.template_code(t) is None
        ]
        return problems


def _present(value: SecretStr | str | None) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


__all__ = ["SmsSettings"]
