"""The applicants of `chronic bench`: synthetic insured persons of its own, planned like the demo.

The seeded register (200 generated persons, about 190 insured normally) cannot carry 200
applications a run, let alone run after run or ``--open 10000``: the demo takes each person
once per batch, and the one-open-application and yearly-quota rules (3 per person, disease and
year) soon use the rest up. So the bench registers persons of its own — names ``压测000001`` …
(:data:`~chronic.seed.world.BENCH_NAME_PREFIX`), valid ID numbers and mobiles, resident
insurance, insured normally — as many as the run needs beyond those still free, and never
deletes anything: the bench's applications stay on record like any other, and the demo never
picks these persons. Forms (diseases, hospitals, materials) come from the demo's planner,
:func:`chronic.demo.plan_batch`, restricted to the two-stage diseases so every application
takes the same path: intake, initial review, re-review, approval.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from sqlmodel import col, select

from chronic.db import Database
from chronic.demo import DemoPlanError, PlannedApplication, Scenario, plan_batch
from chronic.seed.world import BENCH_NAME_PREFIX, add_bench_people
from models.policy import PolicyProfile
from models.tables import Application, InsuredPerson


async def free_bench_people(db: Database, policy: PolicyProfile) -> int:
    """Bench persons who can apply now: no open application, a two-stage disease unused
    this year."""
    zone = timezone(timedelta(hours=policy.timezone_offset_hours))
    year = datetime.now(zone).year
    two_stage = {d.code for d in policy.catalogue if not d.instant_track}
    bench = col(InsuredPerson.name).startswith(BENCH_NAME_PREFIX)
    async with db.session() as session:
        persons = set(
            await session.exec(
                select(InsuredPerson.id).where(col(InsuredPerson.region) == policy.region, bench)
            )
        )
        used: dict[int, set[str]] = {}
        for person_id, disease in await session.exec(
            select(Application.person_id, Application.disease_code)
            .join(InsuredPerson, col(InsuredPerson.id) == col(Application.person_id))
            .where(bench, col(Application.year) == year)
        ):
            used.setdefault(person_id, set()).add(disease)
        open_persons = set(
            await session.exec(
                select(Application.person_id)
                .join(InsuredPerson, col(InsuredPerson.id) == col(Application.person_id))
                .where(bench, col(Application.closed_at).is_(None))
            )
        )
    return sum(
        1
        for p in persons
        if p is not None and p not in open_persons and two_stage - used.get(p, set())
    )


async def plan_applications(
    db: Database, policy: PolicyProfile, count: int, *, rng: random.Random
) -> tuple[list[PlannedApplication], int]:
    """``count`` approvable two-stage applications of bench persons; and persons registered.

    Raises:
        DemoPlanError: the register or the expert pool cannot supply them.
    """
    free = await free_bench_people(db, policy)
    created = await add_bench_people(db, count - free, policy.region) if free < count else 0
    zone = timezone(timedelta(hours=policy.timezone_offset_hours))
    plans, skipped = await plan_batch(
        db,
        policy,
        [Scenario.APPROVE] * count,
        rng=rng,
        today=datetime.now(zone).date(),
        bench_people=True,
        instant_track=False,
    )
    if skipped or len(plans) < count:
        raise DemoPlanError(
            f"planned {len(plans)} of {count} applications: " + "; ".join(sorted(set(skipped)))
        )
    return plans, created
