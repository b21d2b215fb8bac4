"""The intake role: eligibility, catalogue, quota and materials checks, working days, the
hospital register as intake sees it, and the checks of out-of-area filings."""

from __future__ import annotations

from typing import ClassVar, Protocol

from temporalio import activity

from models.filing import FilingCheck, FilingCheckRequest, FilingRef, LongTermFilingQuery
from models.messages import (
    HospitalRef,
    IntakeOutcome,
    IntakeRequest,
    MaterialsRecorded,
    MaterialsRound,
    SlaDue,
    SlaRequest,
)

QUEUE = "intake"


class IntakeRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def hospital_register(self, region: str) -> list[HospitalRef]: ...

    @activity.defn
    async def record_materials(self, materials: MaterialsRound) -> MaterialsRecorded: ...

    @activity.defn
    async def check_intake(self, request: IntakeRequest) -> IntakeOutcome: ...

    @activity.defn
    async def sla_due_at(self, request: SlaRequest) -> SlaDue: ...


class FilingIntakeRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def check_filing(self, request: FilingCheckRequest) -> FilingCheck: ...

    @activity.defn
    async def valid_long_term_filing(self, query: LongTermFilingQuery) -> FilingRef | None: ...
