"""Policy profiles: every number of a region's rules, as data.

A profile is loaded from ``models/policies/<region>.toml`` when an application is submitted
and travels inside the workflow input, so the rules in force at submission are the rules the
application is decided by (and a shortened profile makes tests and demos fast without any code
change).
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.domain import HospitalLevel
from models.process import STANDARD_TRACKS, Track, TrackCondition


class Disease(BaseModel):
    """One entry of the region's disease catalogue (病种目录)."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(pattern=r"^[A-Z0-9-]{2,16}$")
    name: str
    category: str = Field(description="Expert-pool category that reviews this disease.")
    instant_track: bool = Field(
        default=False, description="Decided by one expert's final review (即时办理)."
    )
    resident_only: bool = Field(
        default=False, description="Only for urban-rural resident insurance (e.g. PKU in Wuhan)."
    )
    track_a: bool = Field(
        default=False,
        description="Wuhan's 13 diseases whose 三甲 diagnosis lets the hospital desk apply and "
        "that hospital assess (track A).",
    )


class PolicyProfile(BaseModel):
    """The rules of one region. Field docs name the seed each number comes from."""

    model_config = ConfigDict(frozen=True)

    region: str
    name: str
    timezone_offset_hours: int = 8

    applications_per_disease_per_year: int = Field(
        3, ge=1, description="Seed 002: at most 3 per person per disease per calendar year."
    )
    material_max_age: timedelta = Field(
        timedelta(days=365), description="Seed 002: materials issued within the last year."
    )
    material_min_hospital_level: HospitalLevel = Field(
        HospitalLevel.LEVEL_2, description="Seed 002: level 2 or above."
    )
    material_public_hospital_only: bool = Field(True, description="Seed 002: public hospitals.")

    accept_window: timedelta = Field(
        timedelta(hours=24), description="Seed 002: accept or decline within 24 hours."
    )
    decision_window: timedelta = Field(
        timedelta(hours=72),
        description="Office rule: an accepted review is decided within this time, or reassigned.",
    )
    resubmission_window: timedelta = Field(
        timedelta(days=15),
        description="Office rule: a returned application may be corrected within this time.",
    )
    no_expert_retry_interval: timedelta = Field(
        timedelta(hours=1),
        description="First wait before drawing again when no expert is eligible; it doubles "
        "up to no_expert_retry_max. Adding or reinstating an expert wakes the case at once.",
    )
    no_expert_retry_max: timedelta = Field(
        timedelta(hours=24), description="Longest wait between draws while the pool is empty."
    )
    history_event_limit: int = Field(
        2000,
        ge=50,
        description="Operations: continue as new past this many history events while waiting "
        "for an expert, so however long a case waits its history stays bounded.",
    )
    outage_grace: timedelta = Field(
        timedelta(minutes=15),
        description="Office rule: a lapse recorded later than this after its deadline means our "
        "own system was down when the window closed: the offer is withdrawn without a strike.",
    )
    strikes_to_disqualify: int = Field(
        3, ge=1, description="Seed 002: three consecutive declines / lapses disqualify."
    )
    sla_working_days_min: int = Field(5, description="Seed 002: 5–8 working days.")
    sla_working_days_max: int = Field(8, description="Seed 002: 5–8 working days.")

    benefit_validity: timedelta | None = Field(
        timedelta(days=730),
        description="Validity of a benefit certificate; None = long-term (Jilin, seed 003).",
    )
    renewal_lookback_months: int = Field(12, description="Seed 002: 12 months before the end.")
    renewal_min_settlement_months: int = Field(6, description="Seed 002: at least 6 months.")
    designated_hospital_changes_per_year: int | None = Field(
        2,
        description="Seed 002: twice per calendar year (the region's local calendar year); "
        "None = unlimited. The same limit holds, counted apart, for the designated pharmacy.",
    )
    suspended_while_inpatient: bool = Field(
        False,
        description="Seed 003 (Jilin): no outpatient chronic benefit while the person is in "
        "hospital; the office records admission and discharge, which suspend and resume it.",
    )
    benefit_reminder_before: timedelta = Field(
        timedelta(days=30),
        description="Office rule: the person is told this long before a benefit's end date.",
    )
    benefit_history_event_limit: int = Field(
        2000,
        ge=20,
        description="Operations: a benefit's workflow continues as new past this many history "
        "events (changes, stays), so however long the benefit lasts its history stays bounded.",
    )
    audit_sample_rate: float = Field(
        0.10, ge=0, le=1, description="Seed 002: at least 10 % of approvals re-checked."
    )

    tracks: tuple[Track, ...] = Field(
        STANDARD_TRACKS,
        description="The process: the first track whose condition holds is the application's.",
    )
    assessment_hospitals: tuple[str, ...] = Field(
        (),
        description="Codes of the designated assessment hospitals (鉴定医疗机构), for tracks "
        "whose assessment any of them may make (Jilin, seed 003 table 3).",
    )
    catalogue: tuple[Disease, ...]
    catalogue_sample: bool = Field(
        False,
        description="True when the catalogue is an example, not transcribed from a seed "
        "(Sanmenxia: seed 002 lists no diseases).",
    )
    catalogue_source: str = Field(
        "", description="Where the catalogue comes from (seed and section, or what it samples)."
    )

    @field_validator("benefit_validity", "designated_hospital_changes_per_year", mode="before")
    @classmethod
    def _unbounded(cls, value: object) -> object:
        # TOML has no null: "long_term" (a benefit without end) and "unlimited" (changes).
        return None if value in ("long_term", "unlimited") else value

    @model_validator(mode="after")
    def _check(self) -> PolicyProfile:
        codes = [d.code for d in self.catalogue]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"disease codes listed twice in the catalogue: {duplicates}")
        if not self.tracks or self.tracks[-1].when != TrackCondition():
            raise ValueError("the last track must apply always (no condition): a fallback")
        if self.sla_working_days_min > self.sla_working_days_max:
            raise ValueError("sla_working_days_min is greater than sla_working_days_max")
        return self

    def material_problems(
        self, label: str, *, issued_on: date, level: int, public: bool, today: date
    ) -> list[str]:
        """Why one document fails the region's material rules (age, hospital level, public
        hospital); empty when it passes. Intake applies it to each round, the resubmission
        validator at the door."""
        problems: list[str] = []
        oldest = today - self.material_max_age
        minimum = int(self.material_min_hospital_level)
        if issued_on > today:
            problems.append(f"{label} is dated {issued_on}, in the future")
        elif issued_on < oldest:
            problems.append(
                f"{label} was issued on {issued_on}, more than {self.material_max_age.days} "
                f"days ago: provide one issued since {oldest}"
            )
        if level < minimum:
            problems.append(
                f"{label} comes from a level-{level} hospital: materials must come from a "
                f"hospital of level {minimum} or above"
            )
        if self.material_public_hospital_only and not public:
            problems.append(f"{label} comes from a private hospital: a public one is required")
        return problems

    def track_for(
        self, disease: Disease, *, diagnosed_at_grade_3a: bool, out_of_area: bool = False
    ) -> Track:
        """The application's way through the process (the first track whose condition holds)."""
        for track in self.tracks:
            if track.when.holds(
                instant_track=disease.instant_track,
                track_a=disease.track_a,
                diagnosed_at_grade_3a=diagnosed_at_grade_3a,
                out_of_area=out_of_area,
            ):
                return track
        raise LookupError(f"no track of {self.region} applies to {disease.code}")

    def disease(self, code: str) -> Disease | None:
        """The catalogue entry for ``code``, or None when the region does not list it."""
        return next((d for d in self.catalogue if d.code == code), None)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({d.category for d in self.catalogue}))

    def with_windows(self, **durations: timedelta) -> PolicyProfile:
        """A copy with some durations replaced (demos and tests shorten the windows)."""
        unknown = sorted(
            name
            for name in durations
            if name not in type(self).model_fields or not isinstance(getattr(self, name), timedelta)
        )
        if unknown:
            raise ValueError(f"not a duration of the policy: {', '.join(unknown)}")
        return self.model_copy(update=durations)


_SHARED: dict[PolicyProfile, PolicyProfile] = {}


def shared(policy: PolicyProfile) -> PolicyProfile:
    """The process's one instance of a profile equal to ``policy``.

    Every application carries its profile (the rules in force at submission); thousands of
    cached workflows of one region hold equal profiles, and one shared, immutable instance
    saves each of them its own copy of the catalogue and tracks.
    """
    return _SHARED.setdefault(policy, policy)


def available_regions() -> list[str]:
    """Regions that ship a profile."""
    folder = resources.files("models.policies")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_policy(region: str) -> PolicyProfile:
    """Load the profile of ``region`` (a file name under ``models/policies``)."""
    resource = resources.files("models.policies").joinpath(f"{region}.toml")
    if not resource.is_file():
        raise LookupError(
            f"no policy profile for region {region!r}; available: {', '.join(available_regions())}"
        )
    data = tomllib.loads(resource.read_text(encoding="utf-8"))
    catalogue = data.pop("catalogue_file", None)
    if catalogue is not None:  # a transcribed catalogue (models/policies/catalogues/)
        from models.catalogue import load_catalogue

        transcribed = load_catalogue(catalogue)
        data["catalogue"] = [d.model_dump() for d in transcribed.policy_diseases()]
        data.setdefault("catalogue_source", transcribed.source)
        if transcribed.assessment_hospitals:
            data.setdefault(
                "assessment_hospitals", [h.code for h in transcribed.assessment_hospitals]
            )
    return PolicyProfile.model_validate(data)
