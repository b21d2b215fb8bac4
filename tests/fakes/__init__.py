"""Local stand-ins for outside services (real servers on loopback, not mocks)."""

from __future__ import annotations
