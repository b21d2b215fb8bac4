"""Task-queue names, one per worker role; each is defined by its role's contract
(:mod:`models.roles`), which workflows use directly."""

from __future__ import annotations

from models.roles import assignment, intake, notification, orchestration, review

APPLICATIONS = orchestration.QUEUE
"""Orchestration: all workflow code, no I/O."""
INTAKE = intake.QUEUE
"""Eligibility, catalogue, quota and materials checks; working-day arithmetic; the checks of
out-of-area filings and whether a person holds a valid long-term one."""
ASSIGNMENT = assignment.QUEUE
"""Random expert draws, offers, strikes, disqualification."""
REVIEW = review.QUEUE
"""Decision records, status changes (of applications and filings), benefit certificates, the
audit trail."""
NOTIFICATION = notification.QUEUE
"""SMS to applicants and notices to hospitals, rate-limited per task queue."""
