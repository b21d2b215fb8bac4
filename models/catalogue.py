"""Disease catalogues transcribed from the seeds, one file per region.

``models/policies/catalogues/<region>.toml`` holds what a seed lists: the diseases (Wuhan:
seeds 000/001; Jilin: seed 003, table 1) and, for Jilin, the designated assessment hospitals
(table 3). The region's *process* stays in its policy profile (``models/policies/<region>.toml``);
:meth:`Catalogue.policy_diseases` turns a catalogue into the profile's entries.

Loading validates what a transcription can get wrong: codes and names unique, the counts the
seed states (per kind, track A, hospitals), the table numbers 1..N in order, and names written
with ASCII parentheses that balance (the seeds mix widths; one convention keeps names
comparable). Sanmenxia's seed lists no diseases; its profile carries a sample catalogue,
labelled ``catalogue_sample``.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.policy import Disease

CATALOGUE_FOLDER = "catalogues"


class DiseaseKind(StrEnum):
    """Which list of the seed a disease comes from."""

    SEVERE = "severe"  # 重症疾病 (Wuhan 一(一))
    CHRONIC = "chronic"  # 慢性病 / 门诊慢性疾病 (Wuhan 一(二), Jilin table 1)
    SPECIAL = "special"  # listed apart from both (Wuhan 一(三) 苯丙酮尿症)


def _check_name(name: str) -> str:
    if not name or name != name.strip():
        raise ValueError(f"{name!r}: empty, or blank at either end")
    if "（" in name or "）" in name:
        raise ValueError(f"{name!r}: write parentheses as ASCII '()' (the catalogue convention)")
    depth = 0
    for char in name:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        raise ValueError(f"{name!r}: unbalanced parentheses")
    return name


def _sequence_problem(kind: str, numbers: Sequence[int | None]) -> str | None:
    """Table numbers (序号), when given, are given for every row and run 1..N in order."""
    if all(n is None for n in numbers) or list(numbers) == list(range(1, len(numbers) + 1)):
        return None
    return f"{kind} numbers (序号) must run 1..{len(numbers)} in order: {list(numbers)}"


def _duplicates(values: list[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


class CatalogueDisease(BaseModel):
    """One disease as the seed lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Z0-9-]{2,16}$", description="Stable ASCII code.")
    name: str = Field(max_length=100, description="The seed's wording, ASCII parentheses.")
    kind: DiseaseKind
    category: str = Field(
        pattern=r"^[a-z_]{2,32}$", description="Expert pool (medical specialty); not the seed's."
    )
    seq: int | None = Field(default=None, ge=1, description="The seed table's 序号 (Jilin).")
    track_a: bool = Field(
        default=False,
        description="Wuhan 二(一): diagnosed by a city 三甲 hospital, that hospital's desk "
        "applies and the hospital assesses (one of the 13).",
    )
    resident_only: bool = Field(
        default=False, description="限城乡居民: urban-rural resident insurance only (Wuhan PKU)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name)

    def policy_disease(self) -> Disease:
        """The policy profile's entry for this disease."""
        return Disease(
            code=self.code,
            name=self.name,
            category=self.category,
            resident_only=self.resident_only,
            track_a=self.track_a,
        )


class AssessmentHospital(BaseModel):
    """A designated assessment hospital (鉴定医疗机构) as the seed's table lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1, description="The seed table's 序号.")
    code: str = Field(pattern=r"^[A-Z0-9-]{2,16}$", description="Stable ASCII code.")
    name: str = Field(max_length=100, description="The seed's wording, ASCII parentheses.")
    phones: tuple[str, ...] = Field(
        min_length=1, description="咨询电话 as printed (local numbers, no area code)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name)

    @field_validator("phones")
    @classmethod
    def _digits(cls, phones: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in phones if not p.isascii() or not p.isdigit()]
        if bad:
            raise ValueError(f"phone numbers are digits only: {bad}")
        return phones


class CatalogueCounts(BaseModel):
    """The counts the seed states (or its table's last 序号); loading checks the lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severe: int = Field(0, ge=0)
    chronic: int = Field(0, ge=0)
    special: int = Field(0, ge=0)
    track_a: int = Field(0, ge=0)
    assessment_hospitals: int = Field(0, ge=0)


class Catalogue(BaseModel):
    """A region's catalogue file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    name: str
    source: str = Field(description="Where the lists come from (seed file and section).")
    sample: bool = Field(
        default=False, description="True when the lists are an example, not a transcription."
    )
    counts: CatalogueCounts
    diseases: tuple[CatalogueDisease, ...] = Field(min_length=1)
    phone_note: str = ""
    assessment_hospitals: tuple[AssessmentHospital, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[str] = []
        for what, values in (
            ("disease codes", [d.code for d in self.diseases]),
            ("disease names", [d.name for d in self.diseases]),
            ("hospital codes", [h.code for h in self.assessment_hospitals]),
            ("hospital names", [h.name for h in self.assessment_hospitals]),
        ):
            if duplicates := _duplicates(values):
                problems.append(f"{what} listed twice: {duplicates}")
        actual = {
            "severe": len(self.by_kind(DiseaseKind.SEVERE)),
            "chronic": len(self.by_kind(DiseaseKind.CHRONIC)),
            "special": len(self.by_kind(DiseaseKind.SPECIAL)),
            "track_a": len(self.track_a),
            "assessment_hospitals": len(self.assessment_hospitals),
        }
        for field, count in actual.items():
            stated = getattr(self.counts, field)
            if count != stated:
                problems.append(f"{field}: the file lists {count}, the seed states {stated}")
        for kind, numbers in (
            ("disease", [d.seq for d in self.diseases]),
            ("hospital", [h.seq for h in self.assessment_hospitals]),
        ):
            if problem := _sequence_problem(kind, numbers):
                problems.append(problem)
        if problems:
            raise ValueError(f"{self.region} catalogue: " + "; ".join(problems))
        return self

    def by_kind(self, kind: DiseaseKind) -> tuple[CatalogueDisease, ...]:
        return tuple(d for d in self.diseases if d.kind is kind)

    @property
    def track_a(self) -> tuple[CatalogueDisease, ...]:
        return tuple(d for d in self.diseases if d.track_a)

    def disease(self, code: str) -> CatalogueDisease | None:
        return next((d for d in self.diseases if d.code == code), None)

    def policy_diseases(self) -> tuple[Disease, ...]:
        """The catalogue as a policy profile's ``catalogue``."""
        return tuple(d.policy_disease() for d in self.diseases)


def available_catalogues() -> list[str]:
    """Regions with a transcribed catalogue file."""
    folder = resources.files("models.policies").joinpath(CATALOGUE_FOLDER)
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def parse_catalogue(text: str) -> Catalogue:
    """Validate a catalogue file's text (what :func:`load_catalogue` reads)."""
    return Catalogue.model_validate(tomllib.loads(text))


def load_catalogue(region: str, folder: Path | None = None) -> Catalogue:
    """The catalogue of ``region``: ``folder/catalogues/<region>.toml`` when an office keeps its
    own profiles in ``folder``, else the shipped ``models/policies/catalogues/<region>.toml``."""
    own = folder / CATALOGUE_FOLDER / f"{region}.toml" if folder is not None else None
    resource: Traversable = (
        own
        if own is not None and own.is_file()
        else resources.files("models.policies")
        .joinpath(CATALOGUE_FOLDER)
        .joinpath(f"{region}.toml")
    )
    if not resource.is_file():
        raise LookupError(
            f"no catalogue file for region {region!r}; available: "
            f"{', '.join(available_catalogues())} (Sanmenxia's sample catalogue is in its "
            "policy profile)"
        )
    catalogue = parse_catalogue(resource.read_text(encoding="utf-8"))
    if catalogue.region != region:
        raise ValueError(f"{region}.toml declares region {catalogue.region!r}")
    return catalogue
