"""The review role: decision records, status changes, benefits (the certificate, its workflow
started and each change written), office notices, the status of filings, and the monthly
oversight records."""

from __future__ import annotations

from typing import ClassVar, Protocol

from temporalio import activity

from models.benefit import (
    BenefitEvent,
    BenefitRecorded,
    BenefitStart,
    RenewalCheck,
    RenewalFound,
)
from models.domain import OfferStatus
from models.filing import FilingStatusChange
from models.messages import (
    BenefitIssued,
    BenefitRequest,
    OfficeNoticeRequest,
    ReviewRecord,
    StatusChange,
)
from models.oversight import (
    AuditSampleDrawn,
    AuditSampleRequest,
    ExpertMonthRecorded,
    ExpertMonthRequest,
)

QUEUE = "review"


class ReviewRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def record_review(self, review: ReviewRecord) -> OfferStatus | None: ...

    @activity.defn
    async def change_status(self, change: StatusChange) -> bool: ...

    @activity.defn
    async def office_notice(self, notice: OfficeNoticeRequest) -> None: ...

    @activity.defn
    async def issue_benefit(self, request: BenefitRequest) -> BenefitIssued: ...


class FilingReviewRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def record_filing_status(self, change: FilingStatusChange) -> bool: ...


class OversightRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def record_expert_month(self, request: ExpertMonthRequest) -> ExpertMonthRecorded: ...

    @activity.defn
    async def draw_audit_sample(self, request: AuditSampleRequest) -> AuditSampleDrawn: ...


class BenefitRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def start_benefit(self, start: BenefitStart) -> str: ...

    @activity.defn
    async def record_benefit_event(self, event: BenefitEvent) -> BenefitRecorded: ...

    @activity.defn
    async def renewal_check(self, check: RenewalCheck) -> RenewalFound: ...
