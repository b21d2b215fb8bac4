"""The demo world: ``chronic seed`` and the ``seeded_database`` test fixture."""

from __future__ import annotations

from chronic.seed.world import (
    SeedReport,
    TableCount,
    load_reference,
    load_references,
    months_before,
    seed_world,
)

__all__ = [
    "SeedReport",
    "TableCount",
    "load_reference",
    "load_references",
    "months_before",
    "seed_world",
]
