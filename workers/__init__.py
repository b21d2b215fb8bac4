"""Worker processes: one module per role, each naming its task queue and what it runs.

``chronic worker <role>`` runs one of them; adding a role means adding a module here and a
line in :data:`ROLES`.
"""

from __future__ import annotations

ROLES: dict[str, str] = {
    "orchestration": "workers.orchestration",
    "intake": "workers.intake",
    "assignment": "workers.assignment",
    "review": "workers.review",
    "notification": "workers.notification",
}
"""Role name → module with ``TASK_QUEUE`` and ``build(client, resources) -> Worker``."""
