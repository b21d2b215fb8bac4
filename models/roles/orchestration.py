"""The orchestration role: every workflow, no activities, no I/O."""

from __future__ import annotations

QUEUE = "applications"
