"""Errors activities raise when retrying cannot help (Temporal stops retrying them)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def missing_record(kind: str, key: object) -> ApplicationError:
    """A row the workflow relies on is not in the database (deleted, or another database)."""
    return ApplicationError(
        f"{kind} {key} has no record in the business database",
        type=f"Missing{kind.title().replace(' ', '')}",
        non_retryable=True,
    )
