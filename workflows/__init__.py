"""The processes, as Temporal workflows (workflow-safe imports only)."""

from __future__ import annotations

from workflows.application import ApplicationWorkflow

WORKFLOWS = [ApplicationWorkflow]
"""Every workflow the orchestration worker runs."""
