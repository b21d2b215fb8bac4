"""The demo's plan: which scenarios a batch holds, and who applies for what with which materials.

A scenario says what the simulated people do (approve, decline, return, examine on site,
refuse …); a track is the way the region's process takes an application (models/process.py).
Which scenarios a region's batch holds follows from the step kinds of its tracks, never from
its name: a declined offer needs an ``expert_review`` step, an office return an
``office_acceptance``, an on-site examination a ``hospital_assessment`` that allows one, a
remote applicant an ``intake_checks`` step that asks for a long-term out-of-area filing. Each
planned application aims at one track (the least used one of those its scenario fits, so a
batch goes every way) and gets a disease, a diagnosing hospital and a person for which the
policy chooses exactly that track.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from sqlmodel import col, select

from chronic.db import Database
from chronic.seed import load_reference
from chronic.seed.world import ReferenceHospital, is_bench_name
from models.application import ApplicationForm
from models.domain import (
    ApplicationStatus,
    DiagnosisSetting,
    ExpertStatus,
    FilingType,
    FilingUploadKind,
    HospitalGrade,
    InsuranceStatus,
    InsuranceType,
    MaterialKind,
)
from models.filing import INSURED_PLACES, FilingForm
from models.messages import MaterialItem
from models.policy import Disease, FormField, PolicyProfile
from models.process import (
    STANDARD_TRACKS,
    ExpertReview,
    HospitalAssessment,
    IntakeChecks,
    OfficeAcceptance,
    StepKind,
    Track,
)
from models.tables import Application, Expert, FilingRecord, Hospital, InsuredPerson, Pharmacy

REFUSAL_ID_NUMBER = "410102198406180357"
"""刘芳 of ``chronic/seed/reference/sanmenxia.toml``: insurance suspended, so intake refuses
her. Every region's refusal is the suspended example person of its reference file."""
REFUSAL_DISEASE = "COPD"
"""The refusal's disease where the catalogue lists it (else one drawn from the catalogue)."""


_STREETS = ("解放大道", "中山大道", "建设大道", "友谊路", "民主路", "和平大道", "人民大街")
"""Streets of the addresses a region's form may ask for (any city has some of these)."""


class Scenario(StrEnum):
    """What the simulated people do with one application, and so which branch it takes."""

    APPROVE = "approve"  # everyone approves: experts, the office, the assessing hospital
    DECLINE = "decline"  # the first expert declines with a reason; the next one accepts
    LAPSE = "lapse"  # nobody answers the first offer within the window; reassigned
    REJECT = "reject"  # the deciding expert or hospital rejects with an opinion
    ARBITRATION = "arbitration"  # initial review approves, re-review rejects: a third expert
    MATERIALS = "materials"  # the reviewer asks for more; the clerk resubmits; same reviewer
    RETURN = "return"  # materials from a level-1 hospital: returned, resubmitted good ones
    RETURN_OLD = "return_old"  # materials older than the limit: returned, resubmitted
    REFUSAL = "refusal"  # insurance suspended: refused at intake
    DESK = "desk"  # the diagnosing hospital's desk applies; the office designates it to assess
    EXAMINATION = "examination"  # the assessing hospital examines on site (SMS), then approves
    OFFICE_RETURN = "office_return"  # the office returns it; the clerk resubmits; approved
    OFFICE_REFUSES = "office_refuses"  # the hospital approves, the office refuses to confirm
    FILED = "filed"  # lives elsewhere: files a long-term out-of-area filing first; approved
    NOT_FILED = "not_filed"  # lives elsewhere without a filing: refused at intake

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def expected(self) -> ApplicationStatus:
        """The final status this scenario should end in."""
        if self in (Scenario.REJECT, Scenario.OFFICE_REFUSES):
            return ApplicationStatus.REJECTED
        if self in (Scenario.REFUSAL, Scenario.NOT_FILED):
            return ApplicationStatus.REFUSED
        return ApplicationStatus.APPROVED

    @property
    def out_of_area(self) -> bool:
        """The applicant lives outside the region (异地)."""
        return self in (Scenario.FILED, Scenario.NOT_FILED)

    def fits(self, track: Track) -> bool:
        """Whether the track's steps let this scenario happen."""
        intake = track.step(StepKind.INTAKE_CHECKS)
        needs_filing = isinstance(intake, IntakeChecks) and intake.requires_long_term_filing
        if needs_filing != self.out_of_area:
            return False  # only remote applicants take a track that asks for a filing
        review = track.step(StepKind.EXPERT_REVIEW)
        office = track.step(StepKind.OFFICE_ACCEPTANCE)
        assessment = track.step(StepKind.HOSPITAL_ASSESSMENT)
        match self:
            case Scenario.DECLINE | Scenario.LAPSE | Scenario.MATERIALS:
                return review is not None
            case Scenario.ARBITRATION:
                return isinstance(review, ExpertReview) and review.on_disagreement is not None
            case Scenario.DESK:
                return (
                    isinstance(office, OfficeAcceptance)
                    and office.designates == "diagnosing_hospital"
                )
            case Scenario.EXAMINATION:
                return isinstance(assessment, HospitalAssessment) and assessment.on_site_examination
            case Scenario.OFFICE_RETURN:
                return office is not None
            case Scenario.OFFICE_REFUSES:
                return track.step(StepKind.OFFICE_CONFIRMATION) is not None
        return True


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
    Scenario.DESK: "desk applies",
    Scenario.EXAMINATION: "on-site exam",
    Scenario.OFFICE_RETURN: "office return",
    Scenario.OFFICE_REFUSES: "office refuses",
    Scenario.FILED: "remote, filed",
    Scenario.NOT_FILED: "remote, no filing",
}

# Priority when the batch is small: one of each branch the region's process has, first.
_ONE_OF_EACH = (
    Scenario.APPROVE,
    Scenario.DECLINE,
    Scenario.LAPSE,
    Scenario.REJECT,
    Scenario.MATERIALS,
    Scenario.RETURN,
    Scenario.REFUSAL,
    Scenario.ARBITRATION,
    Scenario.DESK,
    Scenario.EXAMINATION,
    Scenario.OFFICE_RETURN,
    Scenario.OFFICE_REFUSES,
    Scenario.FILED,
    Scenario.NOT_FILED,
)


def branches(policy: PolicyProfile | None = None) -> list[Scenario]:
    """One of each scenario some track of the region's process lets happen, in priority order.

    Sanmenxia (expert review): the 8 branches of seed 002. Wuhan (office acceptance, hospital
    assessment with an on-site examination, office confirmation): approve, reject, an intake
    return, a refusal, the hospital desk's track-A application, an examination, an office
    return and an office refusal. Jilin (assessment hospitals, instant filing, remote
    applicants): approve, reject, return, refusal, examination, remote with and without a filing.
    """
    tracks = policy.tracks if policy is not None else STANDARD_TRACKS
    return [s for s in _ONE_OF_EACH if any(s.fits(t) for t in tracks)]


def has_expert_review(policy: PolicyProfile) -> bool:
    return any(t.step(StepKind.EXPERT_REVIEW) is not None for t in policy.tracks)


def default_count(policy: PolicyProfile) -> int:
    """24 where experts review (declines, lapses and rejections repeat, seed 002's pool is big
    enough); elsewhere one application per branch (Wuhan 8, Jilin 7)."""
    return 24 if has_expert_review(policy) else len(branches(policy))


def plan_scenarios(count: int, policy: PolicyProfile | None = None) -> list[Scenario]:
    """The scenarios of a batch of ``count``: every branch once, then mostly approvals.

    One in eight declines, lapses and rejections each (those the process has); a second return
    (old materials) from 16 on. Below the number of branches the first ``count`` of
    :func:`branches` are taken. Without a policy: Sanmenxia's process (seed 002).
    """
    if count < 1:
        raise ValueError("a demo needs at least one application")
    each = branches(policy)
    if count <= len(each):
        return each[:count]
    scenarios = list(each)
    share = max(1, round(count / 8))
    for scenario in (Scenario.DECLINE, Scenario.LAPSE, Scenario.REJECT):
        if scenario in each:
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
    track: str = ""
    """The track the policy chooses for the form (the planned way through the process)."""
    assessor: str | None = None
    """The hospital that assesses, where the office names it or the applicant chooses it
    (track B's assessment hospital, one of Jilin's, the one where a remote applicant lives)."""
    filing: FilingForm | None = None
    """A long-term out-of-area filing the applicant files before applying."""


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


@dataclass
class _Register:
    """What the database offers a batch of one region."""

    hospitals: list[Hospital]
    experts: list[Expert]
    candidates: list[_Candidate]
    applied: set[tuple[int, str]]
    open_persons: set[int]
    refusal_person: InsuredPerson | None
    elsewhere: list[ReferenceHospital]
    pharmacies: list[str]
    districts: tuple[str, ...]

    def grade_3a(self, code: str) -> bool:
        hospital = next((h for h in self.hospitals if h.code == code), None)
        return hospital is not None and hospital.level == 3 and hospital.grade == HospitalGrade.A


async def _register(db: Database, policy: PolicyProfile, *, bench_people: bool) -> _Register:
    try:
        reference = load_reference(policy.region)
    except LookupError:
        reference = None
    example_numbers = {p.id_number for p in reference.insured_persons} if reference else set()
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
        filers = set(await session.exec(select(FilingRecord.person_id)))
        pharmacies = list(
            await session.exec(
                select(Pharmacy.code)
                .where(col(Pharmacy.region) == policy.region)
                .order_by(col(Pharmacy.code))
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
            # The example applicants stay free for the examples/ files and the CLI walkthrough;
            # people with a filing on record are left to it (a remote applicant files anew).
            if p.id is not None
            and p.id_number not in example_numbers
            and p.id not in open_persons
            and p.id not in filers
            and is_bench_name(p.name) == bench_people
        ]
        suspended = [
            p.id_number
            for p in (reference.insured_persons if reference else ())
            if p.insurance_status == InsuranceStatus.SUSPENDED
        ]
        refusal_person = (
            (
                await session.exec(
                    select(InsuredPerson).where(col(InsuredPerson.id_number) == suspended[0])
                )
            ).first()
            if suspended
            else None
        )
    registered = {h.code for h in hospitals}
    elsewhere = [
        h
        for h in (reference.hospitals if reference else ())
        if h.elsewhere is not None and h.code in registered
    ]
    return _Register(
        hospitals,
        experts,
        candidates,
        applied,
        open_persons,
        refusal_person,
        elsewhere,
        pharmacies,
        reference.districts if reference else (),
    )


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
        DemoPlanError: no insured person, hospital or (where experts review) expert pool to
            work with.
    """
    register = await _register(db, policy, bench_people=bench_people)
    if not register.hospitals or (has_expert_review(policy) and not register.experts):
        what = "hospitals or experts" if has_expert_review(policy) else "hospitals"
        raise DemoPlanError(f"no {what} of {policy.region} in the database: run `chronic seed`")
    minimum = int(policy.material_min_hospital_level)
    qualified = [  # materials from these pass the region's rules (level, grade, public)
        h.code
        for h in register.hospitals
        if not policy.material_problems(
            h.code, issued_on=today, level=h.level, public=h.public, today=today, grade=h.grade
        )
    ]
    below = [h.code for h in register.hospitals if h.level < minimum]
    if not qualified:
        raise DemoPlanError("no hospital of the required level in the database: run `chronic seed`")
    planner = _Planner(policy, register, qualified, below, rng, today, instant_track)
    planned: list[PlannedApplication] = []
    skipped: list[str] = []
    for scenario in scenarios:
        outcome = planner.plan(scenario)
        if isinstance(outcome, str):
            skipped.append(outcome)
        else:
            planned.append(outcome)
    return planned, skipped


class _Planner:
    """Chooses track, disease, hospitals and person for one scenario after another."""

    def __init__(
        self,
        policy: PolicyProfile,
        register: _Register,
        qualified: list[str],
        below: list[str],
        rng: random.Random,
        today: date,
        instant_track: bool | None,
    ) -> None:
        self.policy = policy
        self.register = register
        self.qualified = qualified
        self.below = below
        self.rng = rng
        self.today = today
        self.candidates = list(register.candidates)
        rng.shuffle(self.candidates)
        self.diseases = [
            d for d in policy.catalogue if instant_track is None or d.instant_track == instant_track
        ]
        rng.shuffle(self.diseases)
        self.cursor = 0
        self.used: Counter[str] = Counter()
        self.pools: dict[str, dict[str, int]] = {}

    def tracks_for(self, scenario: Scenario) -> list[Track]:
        """The tracks the scenario fits, the least used so far first (ties: the later track,
        the region's usual way, first)."""
        tracks = list(self.policy.tracks)
        fitting = [t for t in tracks if scenario.fits(t)]
        return sorted(fitting, key=lambda t: (self.used[t.name], -tracks.index(t)))

    def pool_sizes(self, category: str) -> dict[str, int]:
        """Experts of ``category`` not working at each qualified (diagnosing) hospital."""
        if category not in self.pools:
            self.pools[category] = {
                h: sum(
                    1
                    for e in self.register.experts
                    if category in e.categories and e.hospital_code != h
                )
                for h in self.qualified
            }
        return self.pools[category]

    def plan(self, scenario: Scenario) -> PlannedApplication | str:
        if scenario is Scenario.REFUSAL:
            return self._refusal()
        tracks = self.tracks_for(scenario)
        if not tracks:
            return f"{scenario.label}: no track of the {self.policy.region} process lets it happen"
        if scenario.out_of_area and not self.register.elsewhere:
            return (
                f"{scenario.label}: no networked hospital elsewhere in the {self.policy.region} "
                "register (reference file: a hospital with `elsewhere`)"
            )
        for track in tracks:
            chosen = self._choose(scenario, track)
            if chosen is not None:
                self.used[track.name] += 1
                return self._application(scenario, track, *chosen)
        return (
            f"{scenario.label}: no free person, disease and hospital left for it "
            "(every normal insured person has an open application or used the disease)"
        )

    def _choose(self, scenario: Scenario, track: Track) -> tuple[Disease, str, _Candidate] | None:
        """A disease, a diagnosing hospital and a person for which the policy picks ``track``."""
        review = track.step(StepKind.EXPERT_REVIEW)
        extra = 1 if scenario in (Scenario.DECLINE, Scenario.LAPSE) else 0
        for step in range(len(self.diseases)):
            disease = self.diseases[(self.cursor + step) % len(self.diseases)]
            hospitals = self._diagnosing(scenario)
            if isinstance(review, ExpertReview):
                stages = len(review.stages) + (1 if scenario is Scenario.ARBITRATION else 0)
                sizes = self.pool_sizes(disease.category)
                hospitals = [h for h in hospitals if sizes.get(h, 0) >= stages + extra]
                if hospitals:  # as many experts left as possible for reassignments
                    best = max(sizes[h] for h in hospitals)
                    hospitals = [h for h in hospitals if sizes[h] == best]
            hospitals = [
                h
                for h in hospitals
                if self.policy.track_for(
                    disease,
                    diagnosed_at_grade_3a=self.register.grade_3a(h),
                    out_of_area=scenario.out_of_area,
                ).name
                == track.name
            ]
            if not hospitals:
                continue
            person = next(
                (
                    c
                    for c in self.candidates
                    if (c.person_id, disease.code) not in self.register.applied
                    and (not disease.resident_only or c.insurance_type == InsuranceType.RESIDENT)
                ),
                None,
            )
            if person is None:
                continue
            self.cursor += step + 1
            self.candidates.remove(person)  # once per batch
            return disease, self.rng.choice(hospitals), person
        return None

    def _diagnosing(self, scenario: Scenario) -> list[str]:
        if scenario.out_of_area:  # diagnosed where the person lives
            return [h.code for h in self.register.elsewhere if h.code in self.qualified]
        return [h for h in self.qualified if h not in {e.code for e in self.register.elsewhere}]

    def _application(
        self, scenario: Scenario, track: Track, disease: Disease, hospital: str, person: _Candidate
    ) -> PlannedApplication:
        rng, today = self.rng, self.today
        local = self._diagnosing(Scenario.APPROVE)
        rest = [h for h in (local if not scenario.out_of_area else [hospital]) if h != hospital]
        others = [hospital, *rng.sample(rest, min(1, len(rest)))]
        good = _materials(rng, others, today, days_old=(7, 300))
        if scenario is Scenario.RETURN and self.below:
            first = _materials(rng, [rng.choice(self.below)], today, days_old=(7, 120))
        elif scenario in (Scenario.RETURN, Scenario.RETURN_OLD):
            age = self.policy.material_max_age.days
            first = _materials(rng, others, today, days_old=(age + 30, age + 200))
        else:
            first = good
        office = track.step(StepKind.OFFICE_ACCEPTANCE)
        desk = isinstance(office, OfficeAcceptance) and office.designates == "diagnosing_hospital"
        designated = hospital if scenario.out_of_area else rng.choice(local)
        form = _form(
            self.policy,
            person,
            disease,
            hospital,
            designated,
            first,
            rng,
            submitted_by="hospital" if desk else None,
            out_of_area=scenario.out_of_area,
            fields=self._region_fields(scenario.out_of_area),
        )
        return PlannedApplication(
            scenario=scenario,
            disease=disease,
            form=form,
            good_materials=tuple(MaterialItem.model_validate(m) for m in good),
            track=track.name,
            assessor=self._assessor(track, hospital),
            filing=self._filing(person) if scenario is Scenario.FILED else None,
        )

    def _assessor(self, track: Track, diagnosing: str) -> str | None:
        """Who assesses where the office names the hospital or the applicant chooses it."""
        assessment = track.step(StepKind.HOSPITAL_ASSESSMENT)
        if not isinstance(assessment, HospitalAssessment):
            return None
        if assessment.assessors == "any":  # where the applicant lives: where they were seen
            return diagnosing
        registered = {h.code for h in self.register.hospitals}
        if assessment.assessors == "assessment_hospitals":
            return self.rng.choice(
                [h for h in self.policy.assessment_hospitals if h in registered]
                or list(self.policy.assessment_hospitals)
            )
        office = track.step(StepKind.OFFICE_ACCEPTANCE)
        if isinstance(office, OfficeAcceptance) and office.designates == "assessment_hospital":
            # The office names an assessment hospital: one of the profile's, else a 三甲
            # hospital of the register other than the one that diagnosed.
            named = [h for h in self.policy.assessment_hospitals if h in registered] or [
                h.code
                for h in self.register.hospitals
                if self.register.grade_3a(h.code)
                and h.code != diagnosing
                and h.code not in {e.code for e in self.register.elsewhere}
            ]
            return self.rng.choice(named) if named else None
        return None

    def _filing(self, person: _Candidate) -> FilingForm:
        """A long-term residence filing to the networked hospital's city, from today."""
        place = next(p for p in INSURED_PLACES.values() if p.region == self.policy.region)
        hospital = self.rng.choice(self.register.elsewhere)
        assert hospital.elsewhere is not None
        stamp = f"{self.rng.randrange(16**8):08x}"
        uploads = [
            (FilingUploadKind.ID_CARD, f"scans/demo-filing-id-card-{stamp}.jpg"),
            (FilingUploadKind.RESIDENCE_PROOF, f"scans/demo-filing-residence-{stamp}.pdf"),
        ]
        return FilingForm.model_validate(
            {
                "applicant": {
                    "name": person.name,
                    "id_number": person.id_number,
                    "mobile": person.mobile,
                },
                "insured_place": place.code,
                "destination": hospital.elsewhere.model_dump(),
                "insurance_type": InsuranceType(person.insurance_type).value,
                "filing_type": FilingType.LONG_TERM_RESIDENCE.value,
                "start_date": self.today.isoformat(),
                "contact": {"name": person.name, "mobile": person.mobile},
                "uploads": [
                    {
                        "kind": kind.value,
                        "file": file,
                        "sha256": hashlib.sha256(file.encode()).hexdigest(),
                    }
                    for kind, file in uploads
                ],
            }
        )

    def _region_fields(self, out_of_area: bool) -> dict[str, Any]:
        """Values of the fields the region's form requires (its profile's ``form``)."""
        rng, values = self.rng, dict[str, str]()
        district = rng.choice(self.register.districts) if self.register.districts else "市辖区"
        centres = [h.code for h in self.register.hospitals if h.level == 1]
        setting = rng.choice(list(DiagnosisSetting))
        for field in self.policy.form.required_of(out_of_area=out_of_area):
            match field:
                case FormField.ADDRESS:
                    values[field] = f"{district}{rng.choice(_STREETS)}{rng.randint(1, 999)}号"
                case FormField.INSURED_DISTRICT:
                    values[field] = district
                case FormField.DIAGNOSIS_SETTING:
                    values[field] = setting.value
                    if setting is DiagnosisSetting.INPATIENT:
                        values["inpatient_number"] = f"ZY{self.today:%Y}{rng.randrange(10**6):06d}"
                case FormField.COMMUNITY_HEALTH_CENTRE:
                    values[field] = rng.choice(centres or [h.code for h in self.register.hospitals])
                case FormField.DESIGNATED_PHARMACY:
                    if self.register.pharmacies:
                        values[field] = rng.choice(self.register.pharmacies)
        data: dict[str, Any] = {}
        for path, value in values.items():
            *parents, name = str(path).split(".")
            target = data
            for parent in parents:
                target = target.setdefault(parent, {})
            target[name] = value
        return data

    def _refusal(self) -> PlannedApplication | str:
        person = self.register.refusal_person
        if person is None or person.id is None:
            return "refusal: the reference person with suspended insurance is not in the register"
        if person.id in self.register.open_persons:
            return "refusal: the reference person with suspended insurance has an open application"
        disease = self.policy.disease(REFUSAL_DISEASE) or self.rng.choice(
            [d for d in self.policy.catalogue if not d.resident_only]
        )
        local = self._diagnosing(Scenario.APPROVE)
        hospital = self.rng.choice(local)
        materials = _materials(self.rng, [hospital], self.today, days_old=(7, 200))
        candidate = _Candidate(
            person.id, person.id_number, person.name, person.mobile, person.insurance_type
        )
        track = self.policy.track_for(
            disease, diagnosed_at_grade_3a=self.register.grade_3a(hospital)
        )
        return PlannedApplication(
            scenario=Scenario.REFUSAL,
            disease=disease,
            form=_form(
                self.policy,
                candidate,
                disease,
                hospital,
                hospital,
                materials,
                self.rng,
                fields=self._region_fields(out_of_area=False),
            ),
            good_materials=tuple(MaterialItem.model_validate(m) for m in materials),
            track=track.name,
        )


def _form(
    policy: PolicyProfile,
    person: _Candidate,
    disease: Disease,
    diagnosing: str,
    designated: str,
    materials: list[dict[str, Any]],
    rng: random.Random,
    *,
    submitted_by: str | None = None,
    out_of_area: bool = False,
    fields: dict[str, Any] | None = None,
) -> ApplicationForm:
    """The application form (the one place that knows its fields); ``fields``: what the
    region's form requires besides (address, pharmacy …)."""
    extra = dict(fields or {})
    return ApplicationForm.model_validate(
        {
            **extra,
            "region": policy.region,
            "applicant": {
                "name": person.name,
                "id_number": person.id_number,
                "mobile": person.mobile,
                **extra.get("applicant", {}),
            },
            "disease_code": disease.code,
            "case_number": f"BA{rng.randrange(10**7):07d}",
            "diagnosing_hospital": diagnosing,
            "designated_hospital": designated,
            "materials": materials,
            "out_of_area": out_of_area,
            "submitted_by": submitted_by or ("hospital" if rng.random() < 0.3 else "applicant"),
        },
        context={"policy": policy},
    )


def local_zone(policy: PolicyProfile) -> timezone:
    return timezone(timedelta(hours=policy.timezone_offset_hours))
