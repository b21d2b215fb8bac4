"""The demo's plan: which scenarios a batch holds, and who applies for what with which materials."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from sqlmodel import col, select

from chronic.db import Database
from chronic.seed import load_reference
from chronic.seed.world import is_bench_name
from models.application import ApplicationForm
from models.domain import (
    ApplicationStatus,
    ExpertStatus,
    InsuranceStatus,
    InsuranceType,
    MaterialKind,
)
from models.messages import (
    MaterialItem,
)
from models.policy import Disease, PolicyProfile
from models.tables import Application, Expert, Hospital, InsuredPerson

REFUSAL_ID_NUMBER = "410102198406180357"
"""刘芳 of ``chronic/seed/reference.toml``: insurance suspended, so intake refuses her."""
REFUSAL_DISEASE = "COPD"


class Scenario(StrEnum):
    """What the simulated people do with one application, and so which branch it takes."""

    APPROVE = "approve"  # every expert accepts and approves
    DECLINE = "decline"  # the first expert declines with a reason; the next one accepts
    LAPSE = "lapse"  # nobody answers the first offer within the window; reassigned
    REJECT = "reject"  # accepted and rejected with an opinion
    ARBITRATION = "arbitration"  # initial review approves, re-review rejects: a third expert
    MATERIALS = "materials"  # the reviewer asks for more; the clerk resubmits; same reviewer
    RETURN = "return"  # materials from a level-1 hospital: returned, resubmitted good ones
    RETURN_OLD = "return_old"  # materials older than the limit: returned, resubmitted
    REFUSAL = "refusal"  # insurance suspended: refused at intake

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def expected(self) -> ApplicationStatus:
        """The final status this scenario should end in."""
        if self is Scenario.REJECT:
            return ApplicationStatus.REJECTED
        if self is Scenario.REFUSAL:
            return ApplicationStatus.REFUSED
        return ApplicationStatus.APPROVED


_LABELS = {
    Scenario.APPROVE: "approve",
    Scenario.DECLINE: "decline → next",
    Scenario.LAPSE: "lapse → reassign",
    Scenario.REJECT: "reject",
    Scenario.ARBITRATION: "disagree → 3rd",
    Scenario.MATERIALS: "materials → resubmit",
    Scenario.RETURN: "return (level 1)",
    Scenario.RETURN_OLD: "return (old)",
    Scenario.REFUSAL: "refusal",
}

# Priority when the batch is small: one of each branch first.
_ONE_OF_EACH = (
    Scenario.APPROVE,
    Scenario.DECLINE,
    Scenario.LAPSE,
    Scenario.REJECT,
    Scenario.MATERIALS,
    Scenario.RETURN,
    Scenario.REFUSAL,
    Scenario.ARBITRATION,
)


def plan_scenarios(count: int) -> list[Scenario]:
    """The scenarios of a batch of ``count``: every branch once, then mostly approvals.

    One in eight declines, lapses and rejections each; a second return (old materials) from 16
    on. Below 8 the first ``count`` of :data:`_ONE_OF_EACH` are taken.
    """
    if count < 1:
        raise ValueError("a demo needs at least one application")
    if count <= len(_ONE_OF_EACH):
        return list(_ONE_OF_EACH[:count])
    scenarios = list(_ONE_OF_EACH)
    share = max(1, round(count / 8))
    for scenario in (Scenario.DECLINE, Scenario.LAPSE, Scenario.REJECT):
        scenarios += [scenario] * (share - 1)
    if count >= 16:
        scenarios.append(Scenario.RETURN_OLD)
    scenarios = scenarios[:count]
    scenarios += [Scenario.APPROVE] * (count - len(scenarios))
    return scenarios


# ---- the plan ---------------------------------------------------------------------------------


class DemoPlanError(Exception):
    """The database cannot supply the batch (not seeded, or nobody left to apply)."""


@dataclass(frozen=True)
class PlannedApplication:
    """One application of the batch: who the scenario is, and the forms to submit."""

    scenario: Scenario
    disease: Disease
    form: ApplicationForm
    good_materials: tuple[MaterialItem, ...]
    """What the clerk resubmits after a return or a materials request."""


@dataclass(frozen=True)
class _Candidate:
    person_id: int
    id_number: str
    name: str
    mobile: str
    insurance_type: InsuranceType


def _file(kind: MaterialKind, hospital: str, issued_on: date, rng: random.Random) -> dict[str, Any]:
    name = f"scans/demo-{kind.value}-{hospital}-{issued_on:%Y%m%d}-{rng.randrange(16**6):06x}.pdf"
    return {
        "kind": kind.value,
        "hospital": hospital,
        "issued_on": issued_on.isoformat(),
        "file": name,
        "sha256": hashlib.sha256(name.encode()).hexdigest(),
    }


_EXTRA_KINDS = (
    MaterialKind.LAB_RESULT,
    MaterialKind.EXAM_REPORT,
    MaterialKind.INPATIENT_RECORD,
    MaterialKind.DISCHARGE_SUMMARY,
)


def _materials(
    rng: random.Random, hospitals: Sequence[str], today: date, *, days_old: tuple[int, int]
) -> list[dict[str, Any]]:
    """A diagnosis certificate from the first hospital and one or two further documents."""
    items = [
        _file(
            MaterialKind.DIAGNOSIS_CERTIFICATE,
            hospitals[0],
            today - timedelta(days=rng.randint(*days_old)),
            rng,
        )
    ]
    for kind in rng.sample(_EXTRA_KINDS, rng.randint(1, 2)):
        hospital = hospitals[0] if rng.random() < 0.7 else rng.choice(hospitals)
        items.append(_file(kind, hospital, today - timedelta(days=rng.randint(*days_old)), rng))
    return items


async def plan_batch(
    db: Database,
    policy: PolicyProfile,
    scenarios: Sequence[Scenario],
    *,
    rng: random.Random,
    today: date,
    bench_people: bool = False,
    instant_track: bool | None = None,
) -> tuple[list[PlannedApplication], list[str]]:
    """Persons, diseases, hospitals and materials for ``scenarios``; and what was skipped.

    Each person appears once in a batch, never with an open application and never for a
    disease they applied for this year (so the one-open rule and the yearly quota never get
    in the way).

    Args:
        bench_people: plan with ``chronic bench``'s synthetic persons (names starting with
            :data:`~chronic.seed.world.BENCH_NAME_PREFIX`) instead of the seeded register,
            which never offers them.
        instant_track: only diseases of the instant track (True), only two-stage ones
            (False), or both (None).

    Raises:
        DemoPlanError: no insured person or no expert pool to work with.
    """
    async with db.session() as session:
        hospitals = list(
            await session.exec(
                select(Hospital)
                .where(col(Hospital.region) == policy.region)
                .order_by(col(Hospital.code))
            )
        )
        experts = list(
            await session.exec(
                select(Expert).where(
                    col(Expert.region) == policy.region,
                    col(Expert.status) == ExpertStatus.ACTIVE,
                )
            )
        )
        open_persons = set(
            await session.exec(
                select(Application.person_id).where(col(Application.closed_at).is_(None))
            )
        )
        year = datetime.now(local_zone(policy)).year
        applied = {
            (person_id, code)
            for person_id, code in await session.exec(
                select(Application.person_id, Application.disease_code).where(
                    col(Application.year) == year
                )
            )
        }
        reference = {p.id_number for p in load_reference().insured_persons}
        rows = await session.exec(
            select(InsuredPerson)
            .where(
                col(InsuredPerson.region) == policy.region,
                col(InsuredPerson.insurance_status) == InsuranceStatus.NORMAL,
            )
            .order_by(col(InsuredPerson.id))
        )
        candidates = [
            _Candidate(p.id, p.id_number, p.name, p.mobile, p.insurance_type)
            for p in rows
            # The example applicants stay free for the examples/ files and the CLI walkthrough.
            if p.id is not None
            and p.id_number not in reference
            and p.id not in open_persons
            and is_bench_name(p.name) == bench_people
        ]
        refusal_person = (
            await session.exec(
                select(InsuredPerson).where(col(InsuredPerson.id_number) == REFUSAL_ID_NUMBER)
            )
        ).first()
    if not hospitals or not experts:
        raise DemoPlanError(
            f"no hospitals or experts of {policy.region} in the database: run `chronic seed`"
        )
    qualified = [
        h.code
        for h in hospitals
        if h.level >= int(policy.material_min_hospital_level)
        and (h.public or not policy.material_public_hospital_only)
    ]
    below = [h.code for h in hospitals if h.level < int(policy.material_min_hospital_level)]
    if not qualified:
        raise DemoPlanError("no hospital of the required level in the database: run `chronic seed`")
    rng.shuffle(candidates)
    diseases = [
        d for d in policy.catalogue if instant_track is None or d.instant_track == instant_track
    ]
    rng.shuffle(diseases)
    cursor = 0
    planned: list[PlannedApplication] = []
    skipped: list[str] = []
    pools: dict[str, dict[str, int]] = {}

    def pool_sizes(category: str) -> dict[str, int]:
        """Experts of ``category`` not working at each qualified (diagnosing) hospital."""
        if category not in pools:
            pools[category] = {
                h: sum(1 for e in experts if category in e.categories and e.hospital_code != h)
                for h in qualified
            }
        return pools[category]

    for scenario in scenarios:
        if scenario is Scenario.REFUSAL:
            refusal = _plan_refusal(policy, refusal_person, open_persons, qualified, rng, today)
            if isinstance(refusal, str):
                skipped.append(refusal)
            else:
                planned.append(refusal)
            continue
        extra = 1 if scenario in (Scenario.DECLINE, Scenario.LAPSE) else 0
        chosen: tuple[Disease, str, _Candidate] | None = None
        for step in range(len(diseases)):
            disease = diseases[(cursor + step) % len(diseases)]
            if scenario is Scenario.ARBITRATION and disease.instant_track:
                continue
            stages = 1 if disease.instant_track else (3 if scenario is Scenario.ARBITRATION else 2)
            sizes = pool_sizes(disease.category)
            best = max(sizes.values())
            if best < stages + extra:
                continue
            person = next(
                (
                    c
                    for c in candidates
                    if (c.person_id, disease.code) not in applied
                    and (not disease.resident_only or c.insurance_type == InsuranceType.RESIDENT)
                ),
                None,
            )
            if person is None:
                continue
            hospital = rng.choice([h for h, size in sizes.items() if size == best])
            chosen = (disease, hospital, person)
            cursor += step + 1
            break
        if chosen is None:
            skipped.append(
                f"{scenario.label}: no free person, disease and expert pool left for it "
                "(every normal insured person has an open application or used the disease)"
            )
            continue
        disease, hospital, person = chosen
        candidates.remove(person)  # once per batch; the next search starts at a free person
        rest = [h for h in qualified if h != hospital]
        others = [hospital, *rng.sample(rest, min(1, len(rest)))]
        good = _materials(rng, others, today, days_old=(7, 300))
        if scenario is Scenario.RETURN and below:
            first = _materials(rng, [rng.choice(below)], today, days_old=(7, 120))
        elif scenario in (Scenario.RETURN, Scenario.RETURN_OLD):
            age = policy.material_max_age.days
            first = _materials(rng, others, today, days_old=(age + 30, age + 200))
        else:
            first = good
        planned.append(
            PlannedApplication(
                scenario=scenario,
                disease=disease,
                form=_form(policy, person, disease, hospital, rng.choice(qualified), first, rng),
                good_materials=tuple(MaterialItem.model_validate(m) for m in good),
            )
        )
    return planned, skipped


def _plan_refusal(
    policy: PolicyProfile,
    person: InsuredPerson | None,
    open_persons: set[int],
    qualified: list[str],
    rng: random.Random,
    today: date,
) -> PlannedApplication | str:
    disease = policy.disease(REFUSAL_DISEASE)
    if person is None or person.id is None or disease is None:
        return "refusal: the reference person with suspended insurance is not in the register"
    if person.id in open_persons:
        return "refusal: the reference person with suspended insurance has an open application"
    hospital = rng.choice(qualified)
    materials = _materials(rng, [hospital], today, days_old=(7, 200))
    candidate = _Candidate(
        person.id, person.id_number, person.name, person.mobile, person.insurance_type
    )
    return PlannedApplication(
        scenario=Scenario.REFUSAL,
        disease=disease,
        form=_form(policy, candidate, disease, hospital, hospital, materials, rng),
        good_materials=tuple(MaterialItem.model_validate(m) for m in materials),
    )


def _form(
    policy: PolicyProfile,
    person: _Candidate,
    disease: Disease,
    diagnosing: str,
    designated: str,
    materials: list[dict[str, Any]],
    rng: random.Random,
) -> ApplicationForm:
    return ApplicationForm.model_validate(
        {
            "region": policy.region,
            "applicant": {
                "name": person.name,
                "id_number": person.id_number,
                "mobile": person.mobile,
            },
            "disease_code": disease.code,
            "case_number": f"BA{rng.randrange(10**7):07d}",
            "diagnosing_hospital": diagnosing,
            "designated_hospital": designated,
            "materials": materials,
            "submitted_by": "hospital" if rng.random() < 0.3 else "applicant",
        },
        context={"policy": policy},
    )


def local_zone(policy: PolicyProfile) -> timezone:
    return timezone(timedelta(hours=policy.timezone_offset_hours))
