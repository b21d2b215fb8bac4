"""Messages of the monthly expert statistic (workflow-safe: plain pydantic models)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExpertMonthRequest(_Message):
    """Start argument of ``ExpertMonthReport`` and of its ``record_expert_month`` step."""

    region: str
    month: str | None = Field(
        default=None,
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="YYYY-MM; None: the month before the run's start, in the region's time.",
    )
    timezone_offset_hours: int = 8


class HospitalMonth(_Message):
    """One hospital's totals of the month (the figures of its SMS notice)."""

    hospital_code: str
    experts: int
    offers: int
    accepted: int
    declined: int
    lapsed: int
    notice_mobile: bool = Field(description="The hospital has an insurance desk to notify.")


class ExpertMonthRecorded(_Message):
    """What ``record_expert_month`` stored: one report per hospital."""

    region: str
    month: str
    hospitals: list[HospitalMonth]


class AuditSampleRequest(_Message):
    """Start argument of ``AuditSampleWorkflow`` and of its ``draw_audit_sample`` step."""

    region: str
    period: str | None = Field(
        default=None,
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="YYYY-MM; None: the month before the run's start, in the region's time.",
    )
    rate: float = Field(ge=0, le=1, description="The policy's share of approvals to re-check.")
    timezone_offset_hours: int = 8


class AuditSampleDrawn(_Message):
    """What ``draw_audit_sample`` drew (or found drawn before)."""

    region: str
    period: str
    approvals: int
    sampled: list[str]
    seed: str
    created: bool
