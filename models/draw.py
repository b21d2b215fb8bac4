"""The random draw, made verifiable (公开、公正、透明, seed 002).

Each draw takes its randomness from an HMAC of the application ID and the offer's number under
a key the office holds (``CHRONIC_DRAW_SECRET``). Nobody without the key can foresee or steer
a draw, and an auditor can re-derive any recorded one: the offer row keeps the candidate list
and the seed, and ``chronic audit draw APP`` recomputes the seed from the key and the expert
from the seed and the list.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def draw_seed(key: bytes, application_id: str, seq: int) -> str:
    """The seed of offer ``seq`` of ``application_id``: HMAC-SHA256, hex."""
    return hmac.new(key, f"{application_id}:{seq}".encode(), hashlib.sha256).hexdigest()


def drawn(candidates: Iterable[str], seed: str) -> str:
    """The expert a seed picks from a pool: the seed's number modulo the pool's size, in the
    pool sorted by code (so the order the database returned them in does not matter)."""
    pool = sorted(set(candidates))
    if not pool:
        raise ValueError("an empty pool has no expert to draw")
    return pool[int(seed, 16) % len(pool)]
