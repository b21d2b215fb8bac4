"""The notification role: SMS to applicants, filers and hospitals, rate-limited per queue."""

from __future__ import annotations

from typing import ClassVar, Protocol

from temporalio import activity

from models.notifications import SmsRequest, SmsResult

QUEUE = "notification"


class NotificationRole(Protocol):
    QUEUE: ClassVar[str] = QUEUE

    @activity.defn
    async def send_sms(self, request: SmsRequest) -> SmsResult: ...
