"""Fixtures live in tests/fixtures/, one module per real component."""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.temporal"]
