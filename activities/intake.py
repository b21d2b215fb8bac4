"""Intake (受理) on the ``intake`` queue: the checks a clerk makes before experts see a file.

Refusal (no resubmission can help): insurance status not normal, disease not in the catalogue
(or not for this insurance type), the yearly quota used up. Return (退回, fixable): materials
too old, from a hospital below the required level (and grade: Wuhan's 二甲) or not public, no
diagnosis certificate.
"""

from __future__ import annotations

from datetime import date, timedelta, timezone, tzinfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.errors import missing_record
from activities.filing import valid_long_term_filing
from chronic.db import Database
from chronic.workdays import WorkdayCalendar, add_working_days
from models.domain import ApplicationStatus, InsuranceStatus, InsuranceType, MaterialKind
from models.messages import (
    HospitalRef,
    IntakeOutcome,
    IntakeRequest,
    MaterialsRecorded,
    MaterialsRound,
    SlaDue,
    SlaRequest,
)
from models.policy import PolicyProfile
from models.roles.intake import IntakeRole
from models.tables import Application, Hospital, InsuredPerson, Material


class IntakeActivities(IntakeRole):
    """Intake checks against the insurance register, the catalogue and the materials."""

    def __init__(self, db: Database, calendar: WorkdayCalendar | None = None) -> None:
        self.db = db
        self.calendar = calendar  # None: the process's calendar (chronic.workdays)

    @activity.defn
    async def hospital_register(self, region: str) -> list[HospitalRef]:
        """The region's hospitals as intake's material rules see them (code, level, grade,
        public)."""
        async with self.db.session() as session:
            rows = await session.exec(
                select(Hospital).where(col(Hospital.region) == region).order_by(col(Hospital.code))
            )
            return [
                HospitalRef(code=h.code, level=h.level, public=h.public, grade=h.grade)
                for h in rows
            ]

    @activity.defn
    async def record_materials(self, materials: MaterialsRound) -> MaterialsRecorded:
        """Store one round of materials (idempotent per application, round and position).

        Unknown hospital codes are reported, not raised: the update's validator refused them
        already, so this only happens when the register changed in between, and the clerk is
        told rather than the application failed.
        """
        rows = [
            {
                "application_id": materials.application_id,
                "round": materials.round,
                "position": i,
                "kind": m.kind.value,
                "hospital_code": m.hospital,
                "issued_on": m.issued_on,
                "file_ref": m.file,
                "sha256": m.sha256,
            }
            for i, m in enumerate(materials.materials)
        ]
        async with self.db.session() as session:
            wanted = {m.hospital for m in materials.materials}
            known = set(
                await session.scalars(
                    sa.select(col(Hospital.code)).where(col(Hospital.code).in_(wanted))
                )
            )
            unknown = sorted(wanted - known)
            if unknown:
                return MaterialsRecorded(
                    problems=tuple(
                        f"no hospital with code {code} in the register; check the code with "
                        "the hospital's insurance desk"
                        for code in unknown
                    )
                )
            await session.exec(insert(Material).values(rows).on_conflict_do_nothing())
        return MaterialsRecorded(stored=len(rows))

    @activity.defn
    async def check_intake(self, request: IntakeRequest) -> IntakeOutcome:
        """Refuse, return with every reason, or accept one round of an application."""
        policy = request.policy
        today = request.checked_at.astimezone(_zone(policy)).date()
        async with self.db.session() as session:
            application = await session.get(Application, request.application_id)
            if application is None:
                raise missing_record("application", request.application_id)
            # Locking the person serialises quota counts across that person's applications.
            person = await session.get(InsuredPerson, application.person_id, with_for_update=True)
            assert person is not None  # foreign key
            refusals = await self._refusals(session, policy, application, person)
            if request.requires_long_term_filing and application.out_of_area:
                filing = await valid_long_term_filing(session, person.id or 0, today)
                if filing is None:
                    refusals.append(
                        f"no valid long-term out-of-area filing (长期异地就医备案) on {today}: "
                        "an applicant living outside the region files one first "
                        "(chronic filing submit), then applies again"
                    )
            if refusals:
                return IntakeOutcome(accepted=False, refused=True, reasons=tuple(refusals))
            returns = await self._material_problems(session, policy, request, today)
        if returns:
            return IntakeOutcome(accepted=False, reasons=tuple(returns))
        return IntakeOutcome(accepted=True)

    async def _refusals(
        self,
        session: AsyncSession,
        policy: PolicyProfile,
        application: Application,
        person: InsuredPerson,
    ) -> list[str]:
        reasons: list[str] = []
        if person.insurance_status != InsuranceStatus.NORMAL:
            reasons.append(
                f"insurance status is {person.insurance_status}: only insured persons with "
                "normal status can apply; settle the insurance status at the office first"
            )
        disease = policy.disease(application.disease_code)
        if disease is None:
            reasons.append(
                f"disease {application.disease_code} is not in the {policy.region} catalogue"
            )
        elif disease.resident_only and person.insurance_type != InsuranceType.RESIDENT:
            reasons.append(f"{disease.name} is covered for urban-rural resident insurance only")
        earlier = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Application)
            .where(
                col(Application.person_id) == application.person_id,
                col(Application.disease_code) == application.disease_code,
                col(Application.year) == application.year,
                col(Application.id) != application.id,
                col(Application.submitted_at) <= application.submitted_at,
                # Refused applications never reached review; they do not use the quota.
                col(Application.status) != ApplicationStatus.REFUSED,
            )
        )
        quota = policy.applications_per_disease_per_year
        if (earlier or 0) >= quota:
            reasons.append(
                f"quota used: {earlier} applications for {application.disease_code} in "
                f"{application.year} already; at most {quota} per person, disease and calendar "
                "year — apply again next year"
            )
        return reasons

    async def _material_problems(
        self,
        session: AsyncSession,
        policy: PolicyProfile,
        request: IntakeRequest,
        today: date,
    ) -> list[str]:
        rows = (
            await session.exec(
                select(Material, Hospital)
                .join(Hospital, col(Hospital.code) == col(Material.hospital_code))
                .where(
                    col(Material.application_id) == request.application_id,
                    col(Material.round) == request.round,
                )
                .order_by(col(Material.position))
            )
        ).all()
        problems: list[str] = []
        if not any(m.kind == MaterialKind.DIAGNOSIS_CERTIFICATE for m, _ in rows):
            problems.append("no diagnosis certificate (诊断证明) among the materials: add one")
        for material, hospital in rows:
            problems += policy.material_problems(
                f"material {material.position + 1} ({material.kind}, {hospital.name})",
                issued_on=material.issued_on,
                level=hospital.level,
                grade=hospital.grade,
                public=hospital.public,
                today=today,
            )
        return problems

    @activity.defn
    async def sla_due_at(self, request: SlaRequest) -> SlaDue:
        """The end of the working-day target, on the official holiday calendar.

        Kept in an activity so a calendar-library update cannot change a replayed workflow.
        Beyond the official years the target is provisional (see :mod:`chronic.workdays`);
        with an application ID the mark is stored on its row (set, not toggled: idempotent).
        """
        due = add_working_days(request.start, request.working_days, calendar=self.calendar)
        if request.application_id is not None:
            async with self.db.session() as session:
                updated = await session.exec(
                    sa.update(Application)
                    .where(col(Application.id) == request.application_id)
                    .values(sla_provisional=due.provisional)
                )
            if updated.rowcount == 0:
                raise missing_record("application", request.application_id)
        return SlaDue(
            due_at=due.due_at,
            provisional=due.provisional,
            provisional_years=due.provisional_years,
        )


def _zone(policy: PolicyProfile) -> tzinfo:
    return timezone(timedelta(hours=policy.timezone_offset_hours))
