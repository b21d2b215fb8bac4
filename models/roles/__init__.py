"""Role contracts: for each worker role, its task queue and the activities it serves, with their
request and result types (workflow-safe: no I/O, nothing from ``workers/`` or ``activities/``).

Workflows call activities through these (``workflows.steps.run_step(Review.change_status, …)``),
so the argument and the result are type-checked; each activity class in ``activities/``
subclasses its contract, so an activity renamed or retyped on one side only fails at
type-check (mypy: an abstract contract method left unimplemented), not at run time. The
activity's name on the wire is the method's name, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def served(*implementations: object) -> list[Callable[..., Any]]:
    """Every activity of the contracts ``implementations`` subclass, bound to them: what a
    role's worker registers, so an activity added to a contract cannot be left unregistered."""
    activities: list[Callable[..., Any]] = []
    for implementation in implementations:
        contracts = [
            base
            for base in type(implementation).__mro__
            if base.__module__.startswith(__name__ + ".") and getattr(base, "_is_protocol", False)
        ]
        if not contracts:
            raise TypeError(f"{type(implementation).__name__} implements no role contract")
        for contract in contracts:
            for name, member in vars(contract).items():
                if hasattr(member, "__temporal_activity_definition"):
                    activities.append(getattr(implementation, name))
    return activities
