"""What changed between two editions of a region's rules (`chronic policy diff`).

Rules are compared by their path in the profile; catalogue entries by disease code and tracks
by name, so a disease moved within the list is not reported as a change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.policy import PolicyProfile, human_duration


def differences(old: PolicyProfile, new: PolicyProfile) -> list[str]:
    """One line per difference: ``path: old → new``, ``+ added``, ``- removed``."""
    a = old.model_dump()
    b = new.model_dump()
    lines: list[str] = []
    for key in a.keys() | b.keys():
        if key in ("catalogue", "tracks"):
            continue
        if a.get(key) != b.get(key):
            lines.append(f"{key}: {_show(a.get(key))} → {_show(b.get(key))}")
    lines.sort()
    lines += _keyed("catalogue", a["catalogue"], b["catalogue"], "code")
    lines += _keyed("tracks", a["tracks"], b["tracks"], "name")
    order_a = [t["name"] for t in a["tracks"]]
    order_b = [t["name"] for t in b["tracks"]]
    if order_a != order_b and sorted(order_a) == sorted(order_b):
        lines.append(f"tracks order: {order_a} → {order_b} (the first that holds is taken)")
    return lines


def _keyed(label: str, old: list[dict[str, Any]], new: list[dict[str, Any]], key: str) -> list[str]:
    before = {item[key]: item for item in old}
    after = {item[key]: item for item in new}
    lines = [f"+ {label}[{k}]: {_show(after[k])}" for k in after if k not in before]
    lines += [f"- {label}[{k}]: {_show(before[k])}" for k in before if k not in after]
    for k in before.keys() & after.keys():
        for field in sorted(before[k].keys() | after[k].keys()):
            if before[k].get(field) != after[k].get(field):
                lines.append(
                    f"{label}[{k}].{field}: {_show(before[k].get(field))} → "
                    f"{_show(after[k].get(field))}"
                )
    return sorted(lines)


def _show(value: Any) -> str:
    if isinstance(value, dict):  # unset and false settings left out: they are the defaults
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items() if v) + "}"
    if isinstance(value, timedelta):
        return human_duration(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return "none" if value is None else str(value)
