"""The processes, as Temporal workflows (workflow-safe imports only)."""

from __future__ import annotations

from workflows.application import ApplicationWorkflow
from workflows.filing import OutOfAreaFilingWorkflow
from workflows.oversight import AuditSampleWorkflow, ExpertMonthReport
from workflows.sms import SmsDelivery

WORKFLOWS = [
    ApplicationWorkflow,
    OutOfAreaFilingWorkflow,
    ExpertMonthReport,
    AuditSampleWorkflow,
    SmsDelivery,
]
"""Every workflow the orchestration worker runs."""
