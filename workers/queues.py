"""Task-queue names, one per worker role (workflow-safe: workflows route activities with them)."""

from __future__ import annotations

APPLICATIONS = "applications"
"""Orchestration: all workflow code, no I/O."""
INTAKE = "intake"
"""Eligibility, catalogue, quota and materials checks; working-day arithmetic; the checks of
out-of-area filings and whether a person holds a valid long-term one."""
ASSIGNMENT = "assignment"
"""Random expert draws, offers, strikes, disqualification."""
REVIEW = "review"
"""Decision records, status changes (of applications and filings), benefit certificates, the
audit trail."""
NOTIFICATION = "notification"
"""SMS to applicants and notices to hospitals, rate-limited per task queue."""
