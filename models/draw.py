"""The random draws, made verifiable (公开、公正、透明, seed 002): expert draws and audit samples.

Each draw takes its randomness from an HMAC of the application ID and the offer's number under
a key the office holds (``CHRONIC_DRAW_SECRET``). Nobody without the key can foresee or steer
a draw, and an auditor can re-derive any recorded one: the offer row keeps the candidate list
and the seed, and ``chronic audit draw APP`` recomputes the seed from the key and the expert
from the seed and the list.

The monthly audit sample (抽审, at least the policy's share of a period's approvals) is drawn
the same way: its seed and the population it was drawn from are kept with the sample.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
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


def audit_seed(key: bytes, region: str, period: str) -> str:
    """The seed of a period's audit sample: HMAC-SHA256 under the office's key, hex."""
    return hmac.new(key, f"audit:{region}:{period}".encode(), hashlib.sha256).hexdigest()


def sample_size(population: int, rate: float) -> int:
    """At least ``rate`` of ``population`` (rounded up), never more than there is."""
    return min(population, math.ceil(population * rate - 1e-9))


def audit_sample(population: Iterable[str], rate: float, seed: str) -> list[str]:
    """The applications a seed draws for audit from a period's approvals, sorted.

    The population is sorted first, so the draw depends only on which applications were
    approved, the rate and the seed: anyone holding those three redraws the same sample.
    """
    ordered = sorted(set(population))
    chosen = random.Random(int(seed, 16)).sample(ordered, sample_size(len(ordered), rate))
    return sorted(chosen)
