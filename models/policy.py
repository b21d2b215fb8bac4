"""Policy profiles: every number of a region's rules, as data.

A profile is loaded from ``models/policies/<region>.toml`` (or from the office's own folder,
``CHRONIC_POLICY_DIR``) when an application is submitted and travels inside the workflow input,
so the rules in force at submission are the rules the application is decided by: a changed
profile applies to new applications only (and a shortened profile makes tests and demos fast
without any code change). Each application records the profile's digest, and the profile itself
is kept by digest in the ``policy_version`` table, so anyone can see the rules a case was
decided by (``chronic policy show --application``).
"""

from __future__ import annotations

import functools
import hashlib
import tomllib
from datetime import date, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.domain import HospitalGrade, HospitalLevel
from models.process import STANDARD_TRACKS, Track, TrackCondition


class Disease(BaseModel):
    """One entry of the region's disease catalogue (病种目录)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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


class FormField(StrEnum):
    """A field of the application form that a region may require; the value is its path."""

    ADDRESS = "applicant.address"  # 现住址 (Wuhan)
    INSURED_DISTRICT = "applicant.insured_district"  # 参保辖区 (Wuhan)
    DIAGNOSIS_SETTING = "diagnosis_setting"  # 门诊确诊 / 住院确诊 + 住院号 (Wuhan)
    COMMUNITY_HEALTH_CENTRE = "community_health_centre"  # 定点社区卫生服务中心 (Wuhan)
    DESIGNATED_PHARMACY = "designated_pharmacy"  # 定点药店 (Wuhan, Jilin)


class ProxyRule(BaseModel):
    """Whether another person may apply for the applicant (代办), and what they must give."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed: bool = Field(False, description="A proxy (代办人) may submit for the applicant.")
    id_number: bool = Field(
        True, description="Jilin, seed 003: 他人代办的，需同时提供本人和代办人身份证."
    )
    mobile: bool = Field(True, description="The proxy's mobile, to reach whoever applied.")


class FormRequirements(BaseModel):
    """What a region's application form asks beyond the fields every form has."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: tuple[FormField, ...] = Field(
        (), description="Fields the region's form requires (seed 000: Wuhan's form)."
    )
    required_out_of_area: tuple[FormField, ...] | None = Field(
        None,
        description="What an applicant living outside the region (异地) must give instead; "
        "None: the same as required. Seed 003: Jilin's remote applicants choose one medical "
        "institution where they live, and no pharmacy.",
    )
    proxy: ProxyRule = ProxyRule()

    def required_of(self, *, out_of_area: bool) -> tuple[FormField, ...]:
        """The fields required of an applicant who lives in the region, or elsewhere."""
        if out_of_area and self.required_out_of_area is not None:
            return self.required_out_of_area
        return self.required


class PolicyProfile(BaseModel):
    """The rules of one region. Field docs name the seed each number comes from."""

    # Forbid unknown keys: a misspelt rule in an office's profile is an error with its path
    # (`chronic policy check`), never a rule silently left at its default.
    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    name: str
    version: str = Field(
        "1",
        max_length=32,
        description="The office's label for this edition of the rules; raise it with every "
        "published change (the digest tells any two editions apart regardless).",
    )
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
    material_min_hospital_grade: HospitalGrade | None = Field(
        None,
        description="Grade a hospital of the minimum level must have (甲 = A): Wuhan's "
        "二级甲等以上 (seed 000) is level 2 grade A, or level 3 of any grade. None: any grade.",
    )
    material_public_hospital_only: bool = Field(True, description="Seed 002: public hospitals.")

    accept_window: timedelta = Field(
        timedelta(hours=24), description="Seed 002: accept or decline within 24 hours."
    )
    accept_reminder_before: timedelta = Field(
        timedelta(hours=4),
        description="Office rule: an expert who has neither accepted nor declined is reminded "
        "by SMS this long before the accept window closes (once per offer); zero, or not "
        "shorter than the window, sends no reminder.",
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
    certificate_title: str = Field(
        "门诊慢病卡",
        max_length=40,
        description="Seed 002's annex: the card an approval issues (Wuhan: 门诊重症待遇认定表).",
    )
    form: FormRequirements = Field(
        FormRequirements(),
        description="What the region's application form requires (fields, proxies).",
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
        self,
        label: str,
        *,
        issued_on: date,
        level: int,
        public: bool,
        today: date,
        grade: str | None = None,
    ) -> list[str]:
        """Why one document fails the region's material rules (age, hospital level and grade,
        public hospital); empty when it passes. Intake applies it to each round, the
        resubmission validator at the door.

        ``grade`` None: not known (a register read before grades travelled), not checked.
        """
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
        wanted = self.material_min_hospital_grade
        if level < minimum:
            problems.append(
                f"{label} comes from a level-{level} hospital: materials must come from a "
                f"hospital of {_level_name(minimum, wanted)} or above"
            )
        elif (
            level == minimum
            and wanted is not None
            and grade is not None
            and HospitalGrade(grade) > wanted  # A (甲) < B (乙) < C (丙)
        ):
            problems.append(
                f"{label} comes from a {_level_name(level, HospitalGrade(grade))} hospital: "
                f"materials must come from a hospital of {_level_name(minimum, wanted)} or "
                "above"
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

    @property
    def digest(self) -> str:
        """SHA-256 of the profile's content: the identity of this exact edition of the rules."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def disease(self, code: str) -> Disease | None:
        """The catalogue entry for ``code``, or None when the region does not list it."""
        return next((d for d in self.catalogue if d.code == code), None)

    def for_case(self, disease_code: str) -> PolicyProfile:
        """The rules one application is decided by: this edition with its catalogue cut to the
        application's disease (and that catalogue's provenance dropped).

        No step of a case reads another disease's entry, and the catalogue is some 70 % of a
        profile: the workflow's input, its cached state and every intake request carry this
        cut copy. The whole edition stays on record under its digest (``policy_version``).
        """
        disease = self.disease(disease_code)
        if disease is None:
            raise ValueError(f"disease {disease_code} is not in the {self.region} catalogue")
        return self.model_copy(update={"catalogue": (disease,), "catalogue_source": ""})

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


def human_duration(duration: timedelta) -> str:
    """``24 h``, ``15 d``, ``30 min``: a policy duration as people read it."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


_GRADE_NAMES = {HospitalGrade.A: "甲等", HospitalGrade.B: "乙等", HospitalGrade.C: "丙等"}


def _level_name(level: int, grade: HospitalGrade | None) -> str:
    """``level 2 grade A (二级甲等)``, or ``level 2`` without a grade."""
    if grade is None:
        return f"level {level}"
    chinese = "一二三"[level - 1] if 1 <= level <= 3 else str(level)
    return f"level {level} grade {grade} ({chinese}级{_GRADE_NAMES[grade]})"


_SHARED: dict[PolicyProfile, PolicyProfile] = {}


def shared(policy: PolicyProfile) -> PolicyProfile:
    """The process's one instance of a profile equal to ``policy``.

    Every application carries its profile (the rules in force at submission); thousands of
    cached workflows of one region hold equal profiles, and one shared, immutable instance
    saves each of them its own copy of the catalogue and tracks.
    """
    return _SHARED.setdefault(policy, policy)


_SHIPPED = resources.files("models.policies")


def available_regions(folder: Path | None = None) -> list[str]:
    """Regions with a profile: the shipped ones and those of the office's ``folder``."""
    names = {p.name for p in _SHIPPED.iterdir()}
    if folder is not None and folder.is_dir():
        names |= {p.name for p in folder.iterdir()}
    return sorted(n.removesuffix(".toml") for n in names if n.endswith(".toml"))


def load_policy(region: str, folder: Path | None = None) -> PolicyProfile:
    """Load the profile of ``region``: ``folder/<region>.toml`` when the office keeps its own
    edition there, else the shipped ``models/policies/<region>.toml``.

    Parsed once per edition of the files: every submission and form asks for its region's
    profile, and an office's edited file (or catalogue) is read again only once it changed.

    Raises:
        LookupError: no profile for ``region``.
        PolicyFileError: the file is not a valid profile (every problem with its path).
    """
    own = folder / f"{region}.toml" if folder is not None else None
    stamp = None
    if own is not None and own.is_file():
        catalogue = folder / "catalogues" / f"{region}.toml" if folder is not None else own
        stamp = (own.stat().st_mtime_ns, catalogue.stat().st_mtime_ns if catalogue.is_file() else 0)
    return _load_policy(region, folder, stamp)


@functools.lru_cache(maxsize=32)
def _load_policy(region: str, folder: Path | None, stamp: tuple[int, int] | None) -> PolicyProfile:
    own = folder / f"{region}.toml" if folder is not None else None
    if stamp is not None and own is not None:
        return read_policy_file(own)
    resource = _SHIPPED.joinpath(f"{region}.toml")
    if not resource.is_file():
        raise LookupError(
            f"no policy profile for region {region!r}; "
            f"available: {', '.join(available_regions(folder))}"
        )
    return parse_policy(resource.read_text(encoding="utf-8"), folder=folder)


class PolicyFileError(ValueError):
    """A profile that cannot be used; ``problems`` are ``"path: what is wrong"`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def read_policy_file(path: Path) -> PolicyProfile:
    """Read and validate a profile file; its catalogue file is looked up next to it first."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyFileError(str(path), [f"cannot be read: {error}"]) from None
    return parse_policy(text, folder=path.parent, source=str(path))


def parse_policy(
    text: str, *, folder: Path | None = None, source: str = "profile"
) -> PolicyProfile:
    """Validate a profile's TOML text.

    Raises:
        PolicyFileError: every problem found, each with its path in the file (a TOML syntax
            error with its line instead).
    """
    from pydantic import ValidationError

    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyFileError(source, [f"not valid TOML: {error}"]) from None
    catalogue = data.pop("catalogue_file", None)
    if catalogue is not None:  # a transcribed catalogue (models/policies/catalogues/)
        from models.catalogue import load_catalogue

        try:
            transcribed = load_catalogue(catalogue, folder=folder)
        except (LookupError, ValueError) as error:
            raise PolicyFileError(source, [f"catalogue_file: {error}"]) from None
        data["catalogue"] = [d.model_dump() for d in transcribed.policy_diseases()]
        data.setdefault("catalogue_source", transcribed.source)
        if transcribed.assessment_hospitals:
            data.setdefault(
                "assessment_hospitals", [h.code for h in transcribed.assessment_hospitals]
            )
    try:
        return PolicyProfile.model_validate(data)
    except ValidationError as error:
        raise PolicyFileError(source, [_problem(e) for e in error.errors()]) from None


def _problem(error: Any) -> str:
    """``tracks[1].steps[0].kind: Input should be ...`` from one pydantic error."""
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    given = error.get("input")
    shown = f" (given: {given!r})" if isinstance(given, str | int | float) and given != "" else ""
    return f"{path or '(top level)'}: {error['msg']}{shown}"
