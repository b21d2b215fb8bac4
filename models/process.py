"""A region's process as data: tracks, each a list of steps chosen from reusable step kinds.

The application workflow reads like a profile: pick the track whose condition the application
meets, then run its steps in order. A step kind is implemented once in the workflow
(``workflows/steps.py`` names them) and configured here, per region and track:

- ``intake_checks`` — the clerk's checks on the file (insurance status, catalogue, yearly
  quota, material age / hospital level); refuse, return for resubmission, or go on;
- ``office_acceptance`` — a clerk accepts and designates the assessment hospital, or returns
  with reasons (Wuhan: 受理 / 退回);
- ``expert_review`` — random draw from the category pool, accept window, strikes, decision
  deadline, stages, and a third expert when two stages disagree (Sanmenxia);
- ``hospital_assessment`` — the designated hospital gives its opinion from the records, or
  first schedules an on-site examination (date and place, the applicant told by SMS);
- ``office_confirmation`` — the office confirms the opinion (registers, issues the benefit) or
  refuses with a reason;
- ``instant_filing`` — the assessment hospital's approval takes effect at once (Jilin 即时办结).

Workflow-safe: plain pydantic models, no I/O.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.domain import ReviewStage


class StepKind(StrEnum):
    INTAKE_CHECKS = "intake_checks"
    OFFICE_ACCEPTANCE = "office_acceptance"
    EXPERT_REVIEW = "expert_review"
    HOSPITAL_ASSESSMENT = "hospital_assessment"
    OFFICE_CONFIRMATION = "office_confirmation"
    INSTANT_FILING = "instant_filing"


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IntakeChecks(_Step):
    kind: Literal[StepKind.INTAKE_CHECKS] = StepKind.INTAKE_CHECKS
    requires_long_term_filing: bool = Field(
        False,
        description="The applicant lives elsewhere: a valid long-term out-of-area filing "
        "(长期异地就医备案) is required, else the application is refused (Jilin, seed 003).",
    )


class OfficeAcceptance(_Step):
    kind: Literal[StepKind.OFFICE_ACCEPTANCE] = StepKind.OFFICE_ACCEPTANCE
    designates: Literal["diagnosing_hospital", "assessment_hospital"] = Field(
        description="Who assesses: the hospital that diagnosed (Wuhan track A), or an "
        "assessment hospital the clerk names and the applicant visits (track B)."
    )
    window: timedelta = Field(
        timedelta(days=5), description="Office rule: a clerk accepts or returns within this time."
    )


class ExpertReview(_Step):
    kind: Literal[StepKind.EXPERT_REVIEW] = StepKind.EXPERT_REVIEW
    stages: tuple[ReviewStage, ...] = Field(min_length=1)
    on_disagreement: ReviewStage | None = Field(
        None, description="A further stage when the first two stages disagree."
    )


class HospitalAssessment(_Step):
    kind: Literal[StepKind.HOSPITAL_ASSESSMENT] = StepKind.HOSPITAL_ASSESSMENT
    on_site_examination: bool = Field(
        False, description="The hospital may examine the applicant in person before deciding."
    )
    assessors: Literal["designated", "assessment_hospitals", "any"] = Field(
        "designated",
        description="Who may assess: the hospital the office designated (or the diagnosing "
        "one); any of the profile's assessment_hospitals, the one the applicant visits "
        "(Jilin); or any hospital, for applicants living elsewhere (assessed where they "
        "live). The first that acts holds the assessment.",
    )
    window: timedelta = Field(
        timedelta(days=20), description="Office rule: the hospital gives its opinion by then."
    )


class OfficeConfirmation(_Step):
    kind: Literal[StepKind.OFFICE_CONFIRMATION] = StepKind.OFFICE_CONFIRMATION
    window: timedelta = Field(
        timedelta(days=5), description="Office rule: the office confirms or refuses by then."
    )


class InstantFiling(_Step):
    kind: Literal[StepKind.INSTANT_FILING] = StepKind.INSTANT_FILING


ProcessStep = Annotated[
    IntakeChecks
    | OfficeAcceptance
    | ExpertReview
    | HospitalAssessment
    | OfficeConfirmation
    | InstantFiling,
    Field(discriminator="kind"),
]


class TrackCondition(BaseModel):
    """When a track applies; every condition given must hold (none given: always)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instant_track: bool | None = Field(None, description="The disease is on the instant track.")
    track_a: bool | None = Field(None, description="The disease is one of Wuhan's 13 track-A.")
    diagnosed_at_grade_3a: bool | None = Field(
        None, description="The diagnosing hospital is a 三甲 hospital of the region."
    )
    out_of_area: bool | None = Field(
        None, description="The applicant lives outside the region (异地)."
    )

    def holds(
        self,
        *,
        instant_track: bool,
        track_a: bool,
        diagnosed_at_grade_3a: bool,
        out_of_area: bool = False,
    ) -> bool:
        facts = {
            "instant_track": instant_track,
            "track_a": track_a,
            "diagnosed_at_grade_3a": diagnosed_at_grade_3a,
            "out_of_area": out_of_area,
        }
        return all(
            wanted is None or facts[name] == wanted for name, wanted in self.model_dump().items()
        )


class Track(BaseModel):
    """One way through the process (Sanmenxia standard / instant, Wuhan A / B, …)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,24}$")
    description: str
    when: TrackCondition = TrackCondition()
    steps: tuple[ProcessStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _decides(self) -> Track:
        kinds = [s.kind for s in self.steps]
        deciders = {StepKind.EXPERT_REVIEW, StepKind.HOSPITAL_ASSESSMENT}
        if not deciders & set(kinds):
            raise ValueError(
                f"track {self.name} has no step that decides (expert_review or hospital_assessment)"
            )
        if StepKind.INSTANT_FILING in kinds and StepKind.OFFICE_CONFIRMATION in kinds:
            raise ValueError(
                f"track {self.name}: instant_filing and office_confirmation exclude each other"
            )
        return self

    def step(self, kind: StepKind) -> ProcessStep | None:
        return next((s for s in self.steps if s.kind == kind), None)


STANDARD_TRACKS: tuple[Track, ...] = (
    Track(
        name="instant",
        description="即时办理: one expert's final review",
        when=TrackCondition(instant_track=True),
        steps=(IntakeChecks(), ExpertReview(stages=(ReviewStage.FINAL_REVIEW,))),
    ),
    Track(
        name="standard",
        description="初审 and 复审 by different experts, a third when they disagree",
        steps=(
            IntakeChecks(),
            ExpertReview(
                stages=(ReviewStage.INITIAL_REVIEW, ReviewStage.RE_REVIEW),
                on_disagreement=ReviewStage.ARBITRATION,
            ),
        ),
    ),
)
"""Seed 002's process (Sanmenxia), the default of a profile that lists no tracks."""
