"""The processes, as Temporal workflows (workflow-safe imports only)."""

from __future__ import annotations

from workflows.application import ApplicationWorkflow
from workflows.benefit import BenefitWorkflow
from workflows.filing import OutOfAreaFilingWorkflow
from workflows.sms import SmsDelivery

WORKFLOWS = [ApplicationWorkflow, BenefitWorkflow, OutOfAreaFilingWorkflow, SmsDelivery]
"""Every workflow the orchestration worker runs."""
