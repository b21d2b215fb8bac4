"""The demo world: catalogue, hospitals, insured persons with settlements, the expert pool.

``chronic seed`` and the ``seeded_database`` test fixture build it with :func:`seed_world`.
Three sources:

* the disease catalogue of every region's policy profile (``models/policies/*.toml``);
* the fixed rows of one reference file per region, ``chronic/seed/reference/<region>.toml``
  (Sanmenxia's hospitals H01–H12 and example applicants, Wuhan's W01…, Jilin's designated
  assessment hospitals JL01–JL05 …) that examples, the demo and tests refer to by code; every
  row is recorded with its file's region; and the pharmacies of every region, of
  ``pharmacies.toml``;
* generated people: insured persons of every region and the expert pool of the region whose
  process has an expert review (Sanmenxia), made with Faker ``zh_CN``.

Generation is deterministic — every generated row comes from its own random stream seeded by
its index (person 17 is the same person whether 20 or 2 000 are asked for) — and every insert
is ``ON CONFLICT DO NOTHING`` on the natural key (ID number, expert code). So seeding twice
creates nothing the second time, and seeding never overwrites state the workflows changed: an
expert's strikes and status, a person's insurance status. Only the rows owned by files (the
catalogue and the reference hospitals) are refreshed when their file changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import sqlalchemy as sa
from faker import Faker
from faker.providers.ssn.zh_CN import Provider as ChineseSsnProvider
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel
from stdnum.cn import ric

import models.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from chronic.db import Database
from chronic.seed.pharmacies import load_pharmacies
from models.application import MainlandMobile
from models.domain import (
    HOSPITAL_CODE,
    ExpertStatus,
    ExpertTitle,
    HospitalGrade,
    HospitalLevel,
    InsuranceStatus,
    InsuranceType,
)
from models.policy import available_regions, load_policy
from models.process import StepKind

# Seeders serialise on this transaction-level advisory lock, so two concurrent `chronic seed`
# runs report sensibly (the second finds everything present) instead of racing row by row.
SEED_LOCK_KEY = 0x6368726F6E6963 + 1

# Seed 002: every expert reviews at least one category; each category needs a pool large
# enough that a decline or a lapse can be reassigned to someone else, at another hospital.
MIN_EXPERTS_PER_CATEGORY = 4
MIN_HOSPITALS_PER_CATEGORY = 3

# Share of people born in one of their region's county codes (reference file ``area_codes``);
# the code must have existed in the birth year, so e.g. most Sanmenxia people born before 1986
# (when the prefecture was created) get another code of their province.
_LOCAL_BIRTH_SHARE = 0.8
# Birth dates are drawn from fixed ranges, not relative to today: the ID number of person 17
# must not change with the date the seed runs (Faker's own ssn() counts back from today).
_ADULT_BIRTHS = (date(1938, 1, 1), date(2005, 12, 31))
_CHILD_BIRTHS = (date(2008, 1, 1), date(2020, 12, 31))
_CHILD_SHARE = 0.06

_EMPLOYEE_SHARE = 0.45
_NORMAL_STATUS_SHARE = 0.95
_REGULAR_SETTLER_SHARE = 0.85
_HISTORY_MONTHS = 18
_LOOKBACK_MONTHS = 12


# --- the reference file -------------------------------------------------------------------


class ReferencePlace(BaseModel):
    """Where a hospital outside the region lies (a destination of out-of-area filings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    province: str
    city: str


class ReferenceHospital(BaseModel):
    """A fixed hospital of a region's reference file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=HOSPITAL_CODE.pattern)
    name: str
    level: HospitalLevel
    grade: HospitalGrade
    public: bool
    seed: str = Field(
        "", description="Where a seed names this hospital (``003 附表3 (1)``); empty: ours."
    )
    elsewhere: ReferencePlace | None = Field(
        None,
        description="A networked hospital at a destination (异地联网定点医院), where the "
        "region's applicants living elsewhere are seen; the demo files them there.",
    )

    def row(self, region: str) -> dict[str, Any]:
        """The ``hospital`` row (without the desk's notice mobile)."""
        return {**self.model_dump(mode="json", exclude={"seed", "elsewhere"}), "region": region}


class ReferencePerson(BaseModel):
    """A fixed example applicant of a region's reference file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id_number: str
    name: str
    mobile: str
    insurance_type: InsuranceType
    insurance_status: InsuranceStatus
    settled_months: int = Field(
        _LOOKBACK_MONTHS,
        ge=0,
        le=_LOOKBACK_MONTHS,
        description="Months with settlements among the 12 before the seeding month.",
    )

    @field_validator("id_number")
    @classmethod
    def _valid_id_number(cls, value: str) -> str:
        if not known_id_number(value):
            raise ValueError(
                f"{value} is not a valid resident ID number (check digit, birth date, or a "
                "place code that did not exist in the birth year)"
            )
        return value

    @field_validator("mobile")
    @classmethod
    def _e164_mobile(cls, value: str) -> str:
        if e164_mainland_mobile(value) != value:
            raise ValueError(f"{value} is not a mainland mobile number written as +86…")
        return value


class Reference(BaseModel):
    """The whole of one region's reference file, ``chronic/seed/reference/<region>.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    persons: int = Field(ge=0, description="Generated insured persons when not told otherwise.")
    area_codes: tuple[str, ...] = Field(
        min_length=1, description="County codes (GB/T 2260) the region's people are born in."
    )
    province_code: str = Field(
        pattern=r"^\d{2}$", description="For people born before a county code existed."
    )
    stream: str = Field(
        min_length=1, description="Random streams of the generated people: <stream>/<index>."
    )
    districts: tuple[str, ...] = Field(
        (), description="Insured districts (参保辖区) a form names where the region asks for one."
    )
    hospitals: tuple[ReferenceHospital, ...]
    insured_persons: tuple[ReferencePerson, ...] = ()

    @model_validator(mode="after")
    def _a_region_with_a_policy(self) -> Reference:
        if self.region not in available_regions():
            raise ValueError(f"no policy profile for region {self.region!r}")
        return self

    @property
    def province_area_codes(self) -> tuple[str, ...]:
        return tuple(c for c in ChineseSsnProvider.area_codes if c.startswith(self.province_code))


def reference_regions() -> list[str]:
    """Regions with a reference file (Sanmenxia first: its rows were the first world)."""
    folder = resources.files("chronic.seed").joinpath("reference")
    names = sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )
    return sorted(names, key=lambda r: r != "sanmenxia")


def load_reference(region: str = "sanmenxia") -> Reference:
    """Read and validate ``chronic/seed/reference/<region>.toml``.

    Raises:
        LookupError: no reference file for ``region``.
    """
    resource = resources.files("chronic.seed").joinpath("reference", f"{region}.toml")
    if not resource.is_file():
        raise LookupError(
            f"no reference file for region {region!r}; available: {', '.join(reference_regions())}"
        )
    reference = Reference.model_validate(tomllib.loads(resource.read_text(encoding="utf-8")))
    if reference.region != region:
        raise ValueError(f"reference/{region}.toml says region = {reference.region!r}")
    return reference


def load_references() -> list[Reference]:
    """Every region's reference file, Sanmenxia first."""
    return [load_reference(region) for region in reference_regions()]


# --- generated people ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    """A month with normal settlements."""

    month: date
    settlements: int
    amount_cents: int


@dataclass(frozen=True)
class Person:
    """An insured person to seed, with their settlement history."""

    id_number: str
    name: str
    mobile: str
    insurance_type: InsuranceType
    insurance_status: InsuranceStatus
    history: tuple[Settlement, ...]


@dataclass(frozen=True)
class ExpertDraft:
    """An expert to seed."""

    code: str
    name: str
    hospital_code: str
    title: ExpertTitle
    categories: tuple[str, ...]
    mobile: str | None = None


def months_before(today: date, count: int) -> list[date]:
    """First days of the ``count`` calendar months before the month of ``today``, newest first.

    The current month is not included: its settlements are not complete yet. The renewal rule
    (seed 002) looks at ``months_before(end_date, 12)``.
    """
    index = today.year * 12 + today.month - 1
    return [date((index - k) // 12, (index - k) % 12 + 1, 1) for k in range(1, count + 1)]


_MOBILE: TypeAdapter[str] = TypeAdapter(MainlandMobile)


def e164_mainland_mobile(raw: str) -> str | None:
    """``raw`` as +86… when the application form would accept it as a mobile, else None."""
    try:
        return _MOBILE.validate_python(raw)
    except ValidationError:
        return None


def _stream(fake: Faker, key: str) -> Any:
    """Reseed ``fake`` for one row; returns its ``random.Random`` for the non-Faker choices."""
    fake.seed_instance(f"chronic-seed/{key}")
    return fake.random


def _mobile(fake: Faker) -> str:
    # Faker's zh_CN prefixes are all mobile today; the check keeps it so if its list changes.
    for _ in range(100):
        mobile = e164_mainland_mobile(fake.phone_number())
        if mobile is not None:
            return mobile
    raise RuntimeError("Faker produced no valid mainland mobile number in 100 tries")


def _date_between(rng: Any, span: tuple[date, date]) -> date:
    return span[0] + timedelta(days=rng.randrange((span[1] - span[0]).days + 1))


def known_id_number(number: str) -> bool:
    """``stdnum.cn.ric.is_valid``, with its place lookup: the check digit, the birth date, and
    a place code that existed in the birth year.

    A few codes of stdnum's table have no county entry (620201, in Faker's list of codes):
    its lookup then raises ``KeyError`` instead of saying no. Such a number is not known.
    """
    try:
        return ric.is_valid(number)
    except KeyError:
        return False


def _id_number(rng: Any, *, born: date, female: bool, reference: Reference) -> str:
    """An 18-digit resident ID number that ``stdnum.cn.ric`` accepts, mostly born locally."""
    local = rng.random() < _LOCAL_BIRTH_SHARE
    for attempt in range(1000):
        if not local:
            pool: Sequence[str] = ChineseSsnProvider.area_codes
        elif attempt < 3:
            pool = reference.area_codes
        else:  # born before the county code existed: another code of the province
            pool = reference.province_area_codes
        area = rng.choice(pool)
        order = rng.randrange(0, 1000, 2) + (0 if female else 1)  # odd = male, even = female
        body = f"{area}{born:%Y%m%d}{order:03d}"
        number = body + ric.calc_check_digit(body + "0")
        # Rejected: place codes that did not exist in the birth year (and the odd code of
        # Faker's list that stdnum does not know). Draw again.
        if known_id_number(number):
            return number
    raise RuntimeError(f"no valid ID number for a birth date of {born} in 1000 tries")


def _history(rng: Any, months: list[date], *, recent: int, older: int) -> tuple[Settlement, ...]:
    chosen = rng.sample(months[:_LOOKBACK_MONTHS], recent)
    chosen += rng.sample(months[_LOOKBACK_MONTHS:], older)
    rows = []
    for month in sorted(chosen):
        count = rng.randint(1, 6)
        rows.append(Settlement(month, count, count * rng.randint(3_000, 60_000)))
    return tuple(rows)


def reference_people(reference: Reference, *, today: date) -> list[Person]:
    """The example applicants of a reference file with their stated settlement history."""
    fake = Faker("zh_CN")
    months = months_before(today, _HISTORY_MONTHS)
    people = []
    for entry in reference.insured_persons:
        rng = _stream(fake, f"reference/{entry.id_number}")
        history = _history(
            rng,
            months,
            recent=entry.settled_months,
            older=_HISTORY_MONTHS - _LOOKBACK_MONTHS,
        )
        people.append(
            Person(
                entry.id_number,
                entry.name,
                entry.mobile,
                entry.insurance_type,
                entry.insurance_status,
                history,
            )
        )
    return people


def generate_people(
    count: int, *, today: date, taken: set[str] | None = None, reference: Reference | None = None
) -> list[Person]:
    """``count`` insured persons of the reference's region (default Sanmenxia); the identities
    do not depend on ``today``, the histories do.

    About 95 % are insured normally (the rest suspended or terminated); most settled in at
    least 6 of the last 12 months, the irregular ones and the non-normal ones in fewer — so the
    renewal rule has people on both sides. ``taken`` holds ID numbers to avoid (the reference
    persons); a rare collision moves to the next stream, deterministically.
    """
    reference = reference or load_reference()
    fake = Faker("zh_CN")
    months = months_before(today, _HISTORY_MONTHS)
    seen = set(taken or ())
    people = []
    for index in range(count):
        attempt = 0
        while True:
            rng = _stream(fake, f"{reference.stream}/{index}" + (f"/{attempt}" if attempt else ""))
            female = rng.random() < 0.5
            name = fake.name_female() if female else fake.name_male()
            child = rng.random() < _CHILD_SHARE
            born = _date_between(rng, _CHILD_BIRTHS if child else _ADULT_BIRTHS)
            id_number = _id_number(rng, born=born, female=female, reference=reference)
            if id_number not in seen:
                break
            attempt += 1
        seen.add(id_number)
        mobile = _mobile(fake)
        insurance_type = (
            InsuranceType.EMPLOYEE
            if not child and rng.random() < _EMPLOYEE_SHARE
            else InsuranceType.RESIDENT
        )
        roll = rng.random()
        if roll < _NORMAL_STATUS_SHARE:
            status = InsuranceStatus.NORMAL
        elif roll < (1 + _NORMAL_STATUS_SHARE) / 2:
            status = InsuranceStatus.SUSPENDED
        else:
            status = InsuranceStatus.TERMINATED
        regular = status is InsuranceStatus.NORMAL and rng.random() < _REGULAR_SETTLER_SHARE
        history = _history(
            rng,
            months,
            recent=rng.randint(6, 12) if regular else rng.randint(0, 5),
            older=rng.randint(3, 6) if regular else rng.randint(0, 3),
        )
        people.append(Person(id_number, name, mobile, insurance_type, status, history))
    return people


BENCH_NAME_PREFIX = "压测"
"""Names of the synthetic insured persons of ``chronic bench`` start with this (压测 = load
test), followed by a six-digit index: ``压测000017``. They are never offered to the demo."""


def is_bench_name(name: str) -> bool:
    """Whether ``name`` is one of ``chronic bench``'s synthetic insured persons."""
    return name.startswith(BENCH_NAME_PREFIX)


def generate_bench_people(start: int, count: int, region: str = "sanmenxia") -> list[Person]:
    """Synthetic insured persons ``start`` … ``start + count - 1`` for ``chronic bench``.

    Valid ID numbers (python-stdnum's check) and mobiles, Faker ``zh_CN``; resident insurance
    (every disease of the catalogue is open to them), insured normally, no settlement history.
    Deterministic per index, from streams of their own (``bench/person/<index>``), so they
    never depend on the demo world's people.
    """
    reference = load_reference(region)
    fake = Faker("zh_CN")
    people = []
    for index in range(start, start + count):
        rng = _stream(fake, f"bench/person/{index}")
        female = rng.random() < 0.5
        born = _date_between(rng, _ADULT_BIRTHS)
        people.append(
            Person(
                id_number=_id_number(rng, born=born, female=female, reference=reference),
                name=f"{BENCH_NAME_PREFIX}{index:06d}",
                mobile=_mobile(fake),
                insurance_type=InsuranceType.RESIDENT,
                insurance_status=InsuranceStatus.NORMAL,
                history=(),
            )
        )
    return people


async def add_bench_people(db: Database, count: int, region: str) -> int:
    """Register ``count`` more synthetic persons of ``chronic bench``; returns how many.

    They are numbered on from the highest bench index already there. A generated ID number
    that a registered person already has is skipped, and another index drawn instead.
    """
    table = _table("insured_person")
    created = 0
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK_KEY})
        last = (
            await conn.execute(
                sa.select(sa.func.max(table.c.name)).where(
                    table.c.name.startswith(BENCH_NAME_PREFIX)
                )
            )
        ).scalar_one()
        start = int(last.removeprefix(BENCH_NAME_PREFIX)) + 1 if last else 1
        while created < count:
            people = generate_bench_people(start, count - created, region)
            start += len(people)
            made, _ = await _insert_people(conn, people, region)
            created += made.created
    return created


def qualified_hospitals(hospitals: tuple[ReferenceHospital, ...]) -> list[ReferenceHospital]:
    """Hospitals whose doctors may sit in the pool: public, level 2 or above (seed 002)."""
    return sorted(
        (h for h in hospitals if h.public and h.level >= HospitalLevel.LEVEL_2),
        key=lambda h: (-h.level, h.code),
    )


def generate_experts(
    count: int, *, categories: list[str], hospitals: list[ReferenceHospital]
) -> list[ExpertDraft]:
    """``count`` experts E001…, every category covered by 4+ experts from 3+ hospitals.

    Expert *i* reviews category ``i mod n`` and works at a hospital that rotates with its rank
    in that category, so a category's experts sit in different hospitals; a quarter also
    review a second category. When ``count`` is too small for the catalogue, experts take on
    further categories until every category is covered.

    Raises:
        ValueError: ``count`` (or the hospitals) cannot cover every category.
    """
    if count < MIN_EXPERTS_PER_CATEGORY or len(hospitals) < MIN_HOSPITALS_PER_CATEGORY:
        raise ValueError(
            f"an expert pool needs at least {MIN_EXPERTS_PER_CATEGORY} experts at "
            f"{MIN_HOSPITALS_PER_CATEGORY} qualified hospitals (asked for {count} experts, "
            f"{len(hospitals)} qualified hospitals); ask for more experts"
        )
    fake = Faker("zh_CN")
    titles = list(ExpertTitle)
    drafts: list[tuple[str, str, str, ExpertTitle, list[str]]] = []
    mobiles: list[str] = []
    for index in range(count):
        rng = _stream(fake, f"expert/{index}")
        slot, rank = index % len(categories), index // len(categories)
        hospital = hospitals[(slot * 3 + rank) % len(hospitals)]
        own = [categories[slot]]
        if len(categories) > 1 and rng.random() < 0.25:
            own.append(rng.choice([c for c in categories if c != categories[slot]]))
        title = rng.choices(titles, weights=(40, 35, 25))[0]
        drafts.append((f"E{index + 1:03d}", fake.name(), hospital.code, title, own))
        mobiles.append(_mobile(fake))  # last of the expert's stream: the rest is as before

    for category in categories:
        members = [d for d in drafts if category in d[4]]
        at = {d[2] for d in members}
        for draft in drafts:
            if len(members) >= MIN_EXPERTS_PER_CATEGORY and len(at) >= MIN_HOSPITALS_PER_CATEGORY:
                break
            if category in draft[4] or (len(at) < MIN_HOSPITALS_PER_CATEGORY and draft[2] in at):
                continue
            draft[4].append(category)
            members.append(draft)
            at.add(draft[2])
        if len(members) < MIN_EXPERTS_PER_CATEGORY or len(at) < MIN_HOSPITALS_PER_CATEGORY:
            raise ValueError(
                f"{count} experts cannot cover category {category!r} with "
                f"{MIN_EXPERTS_PER_CATEGORY} experts from {MIN_HOSPITALS_PER_CATEGORY} "
                "hospitals; ask for more experts"
            )
    return [
        ExpertDraft(code, name, h, title, tuple(cats), mobile)
        for (code, name, h, title, cats), mobile in zip(drafts, mobiles, strict=True)
    ]


def catalogue() -> list[dict[str, Any]]:
    """Rows of the ``disease`` table: the catalogue of every region that ships a profile."""
    return [
        {
            "region": region,
            "code": disease.code,
            "name": disease.name,
            "category": disease.category,
            "instant_track": disease.instant_track,
        }
        for region in available_regions()
        for disease in load_policy(region).catalogue
    ]


def notice_mobile(hospital_code: str) -> str:
    """The mobile of a hospital's insurance desk (disqualification notices), fixed per code."""
    fake = Faker("zh_CN")
    _stream(fake, f"hospital/{hospital_code}")
    return _mobile(fake)


# --- writing it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableCount:
    """What seeding did to one table."""

    created: int = 0
    present: int = 0  # already there: left as they were, or refreshed (see updated)
    updated: int = 0  # of the present rows, those refreshed from their file

    def __add__(self, other: TableCount) -> TableCount:
        return TableCount(
            self.created + other.created,
            self.present + other.present,
            self.updated + other.updated,
        )


@dataclass
class SeedReport:
    """Counts per table of one :func:`seed_world` run."""

    today: date
    tables: dict[str, TableCount] = field(default_factory=dict)

    @property
    def created(self) -> int:
        """Rows created in all tables (0 when the world was already there)."""
        return sum(count.created for count in self.tables.values())


def local_today(region: str) -> date:
    """Today's date in the region's time zone (the policy profile's fixed offset)."""
    offset = timedelta(hours=load_policy(region).timezone_offset_hours)
    return datetime.now(timezone(offset)).date()


async def seed_world(
    db: Database, *, persons: int | None = None, experts: int = 48, today: date | None = None
) -> SeedReport:
    """Create the demo world of every region in ``db`` (migrated to head); idempotent, one
    transaction.

    Args:
        db: The database to fill.
        persons: Generated insured persons per region, besides the example applicants of its
            reference file (default: the file's ``persons``: Sanmenxia 200, Wuhan and Jilin 60).
        experts: Experts in the pool (E001…); at least 4. The pool belongs to the region whose
            process has an expert review (Sanmenxia); the other regions' hospitals assess.
        today: The date settlement histories are counted back from (default: today in the
            first region's time zone). Only persons created by this run get a history.

    Raises:
        ValueError: ``experts`` is too small to cover every disease category.
    """
    references = load_references()
    today = today or local_today(references[0].region)
    diseases = catalogue()
    categories = sorted({row["category"] for row in diseases})
    people: dict[str, list[Person]] = {}
    taken: set[str] = set()
    for reference in references:
        fixed = reference_people(reference, today=today)
        taken |= {p.id_number for p in fixed}
        generated = generate_people(
            reference.persons if persons is None else persons,
            today=today,
            taken=taken,
            reference=reference,
        )
        taken |= {p.id_number for p in generated}
        people[reference.region] = fixed + generated
    # One pool (codes E001…): the first region whose process has an expert review.
    pools = {
        reference.region: generate_experts(
            experts, categories=categories, hospitals=qualified_hospitals(reference.hospitals)
        )
        for reference in [r for r in references if has_expert_review(r.region)][:1]
    }
    report = SeedReport(today=today)
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK_KEY})
        report.tables["disease"] = await _sync_owned_by_file(
            conn, _table("disease"), diseases, key=("region", "code")
        )
        hospitals = [
            {**h.row(reference.region), "notice_mobile": notice_mobile(h.code)}
            for reference in references
            for h in reference.hospitals
        ]
        # notice_mobile is left out of the refresh: an operator may have changed it.
        report.tables["hospital"] = await _sync_owned_by_file(
            conn, _table("hospital"), hospitals, key=("code",), keep=("notice_mobile",)
        )
        report.tables["pharmacy"] = await _sync_owned_by_file(
            conn,
            _table("pharmacy"),
            [p.model_dump() for p in load_pharmacies()],
            key=("code",),
        )
        persons_count = months_count = experts_count = TableCount()
        for region, region_people in people.items():
            made, months = await _insert_people(conn, region_people, region)
            persons_count, months_count = persons_count + made, months_count + months
        for region, pool in pools.items():
            experts_count = experts_count + await _insert_experts(conn, pool, region)
        report.tables["insured_person"] = persons_count
        report.tables["settlement_month"] = months_count
        report.tables["expert"] = experts_count
    return report


def has_expert_review(region: str) -> bool:
    """Whether any track of the region's process has an expert review (needs a pool)."""
    return any(
        step.kind == StepKind.EXPERT_REVIEW
        for track in load_policy(region).tracks
        for step in track.steps
    )


def _table(name: str) -> sa.Table:
    """A table of models/tables.py, as SQLAlchemy Core (seeding writes in bulk)."""
    return SQLModel.metadata.tables[name]


async def _sync_owned_by_file(
    conn: AsyncConnection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    *,
    key: tuple[str, ...],
    keep: tuple[str, ...] = (),
) -> TableCount:
    """Insert missing rows and refresh changed ones (all columns but ``key`` and ``keep``)."""
    if not rows:
        return TableCount()
    key_columns = [table.c[k] for k in key]
    before = {tuple(row) for row in await conn.execute(sa.select(*key_columns))}
    refreshed = [c for c in rows[0] if c not in key and c not in keep]
    insert = pg_insert(table)
    upsert = insert.on_conflict_do_update(
        index_elements=key_columns,
        set_={c: insert.excluded[c] for c in refreshed},
        # Unchanged rows are not rewritten (and not reported as updated).
        where=sa.tuple_(*(table.c[c] for c in refreshed)).is_distinct_from(
            sa.tuple_(*(insert.excluded[c] for c in refreshed))
        ),
    ).returning(*key_columns)
    written = {tuple(row) for row in await conn.execute(upsert, rows)}
    created = len(written - before)
    return TableCount(created=created, present=len(rows) - created, updated=len(written & before))


async def _insert_people(
    conn: AsyncConnection, people: list[Person], region: str
) -> tuple[TableCount, TableCount]:
    """Insert persons not yet registered and the settlement history of those only."""
    if not people:
        return TableCount(), TableCount()
    table = _table("insured_person")
    stmt = (
        pg_insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.id_number])
        .returning(table.c.id, table.c.id_number)
    )
    rows = [
        {
            "id_number": p.id_number,
            "name": p.name,
            "mobile": p.mobile,
            "insurance_type": p.insurance_type.value,
            "insurance_status": p.insurance_status.value,
            "region": region,
        }
        for p in people
    ]
    created_ids: dict[str, int] = {number: pk for pk, number in await conn.execute(stmt, rows)}
    months = [
        {
            "person_id": created_ids[p.id_number],
            "month": s.month,
            "settlements": s.settlements,
            "amount_cents": s.amount_cents,
        }
        for p in people
        if p.id_number in created_ids
        for s in p.history
    ]
    if months:
        months_table = _table("settlement_month")
        await conn.execute(pg_insert(months_table).on_conflict_do_nothing(), months)
    present_numbers = [p.id_number for p in people if p.id_number not in created_ids]
    present_months = 0
    if present_numbers:
        present_months = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM settlement_month m JOIN insured_person p "
                    "ON p.id = m.person_id WHERE p.id_number = ANY(:numbers)"
                ),
                {"numbers": present_numbers},
            )
        ).scalar_one()
    return (
        TableCount(created=len(created_ids), present=len(present_numbers)),
        TableCount(created=len(months), present=present_months),
    )


async def _insert_experts(
    conn: AsyncConnection, pool: list[ExpertDraft], region: str
) -> TableCount:
    """Insert experts not yet in the pool; existing ones keep their strikes and status (and
    get the draft's mobile when they have none: pools seeded before experts had one)."""
    if not pool:
        return TableCount()
    table = _table("expert")
    stmt = (
        pg_insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.code])
        .returning(table.c.code)
    )
    rows = [
        {
            "code": e.code,
            "name": e.name,
            "hospital_code": e.hospital_code,
            "title": e.title.value,
            "categories": list(e.categories),
            "status": ExpertStatus.ACTIVE.value,
            "consecutive_strikes": 0,
            "disqualified_at": None,
            "region": region,
            "mobile": e.mobile,
        }
        for e in pool
    ]
    created = len((await conn.execute(stmt, rows)).all())
    mobiles = [{"draft_code": e.code, "draft_mobile": e.mobile} for e in pool if e.mobile]
    if mobiles:
        await conn.execute(
            sa.update(table)
            .where(table.c.code == sa.bindparam("draft_code"), table.c.mobile.is_(None))
            .values(mobile=sa.bindparam("draft_mobile")),
            mobiles,
        )
    return TableCount(created=created, present=len(rows) - created)
