"""The pharmacy register of the demo world: ``chronic/seed/pharmacies.toml``.

Kept apart from the regions' reference files (``reference/<region>.toml``: hospitals and
example applicants): one list of every region's pharmacies, each row naming its own.
"""

from __future__ import annotations

import tomllib
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from models.domain import PHARMACY_CODE
from models.policy import available_regions


class ReferencePharmacy(BaseModel):
    """A designated pharmacy (定点药店) of ``pharmacies.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=PHARMACY_CODE.pattern)
    name: str = Field(min_length=1, max_length=100)
    region: str


class PharmacyFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pharmacies: tuple[ReferencePharmacy, ...]


def load_pharmacies() -> tuple[ReferencePharmacy, ...]:
    """Read and validate ``chronic/seed/pharmacies.toml``.

    Raises:
        ValueError: a code listed twice, or a region without a policy profile.
    """
    text = resources.files("chronic.seed").joinpath("pharmacies.toml").read_text(encoding="utf-8")
    rows = PharmacyFile.model_validate(tomllib.loads(text)).pharmacies
    codes = [p.code for p in rows]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise ValueError(f"pharmacies.toml lists these codes twice: {', '.join(twice)}")
    unknown = sorted({p.region for p in rows} - set(available_regions()))
    if unknown:
        raise ValueError(f"pharmacies.toml names regions without a policy: {', '.join(unknown)}")
    return rows
