"""Audit sampling (抽审, seed 002 四): each period at least the policy's share of the approvals
is drawn for a re-check, reproducibly, and each sampled application gets an audit task.

The draw (models/draw.py) takes the period's approved applications (sorted), the policy's
rate and a seed derived from the office's draw key; the sample keeps all three, so anyone can
redraw it (`chronic audit sample --verify`). A task found forged revokes the benefit from a
date and the person is told by SMS; both findings are in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from activities import audit
from chronic.reports.experts import month_bounds
from models import text
from models.domain import ApplicationStatus
from models.draw import audit_sample, audit_seed
from models.tables import Application, AuditSample, AuditTask, Benefit


class AuditRefused(Exception):
    """An audit action that cannot be taken; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class Drawn:
    sample: AuditSample
    tasks: list[AuditTask]
    created: bool  # False: the period was drawn before (a sample is never drawn twice)


async def draw_sample(
    session: AsyncSession,
    *,
    region: str,
    period: str,
    rate: float,
    key: bytes,
    zone: timezone,
    now: datetime,
    actor: str,
) -> Drawn:
    """Draw the period's sample and open its tasks, or return the one drawn before."""
    existing = await _sample(session, region, period)
    if existing is not None:
        return Drawn(existing, await _tasks(session, existing), created=False)
    start, end = month_bounds(period, zone)
    population = sorted(
        await session.scalars(
            sa.select(col(Application.id)).where(
                col(Application.region) == region,
                col(Application.status) == ApplicationStatus.APPROVED,
                col(Application.closed_at) >= start,
                col(Application.closed_at) < end,
            )
        )
    )
    seed = audit_seed(key, region, period)
    await session.exec(
        insert(AuditSample)
        .values(
            region=region, period=period, rate=rate, seed=seed, population=population, drawn_at=now
        )
        .on_conflict_do_nothing(index_elements=["region", "period"])
    )
    sample = await _sample(session, region, period)
    assert sample is not None and sample.id is not None
    for application_id in audit_sample(sample.population, sample.rate, sample.seed):
        await session.exec(
            insert(AuditTask)
            .values(sample_id=sample.id, application_id=application_id, status="open")
            .on_conflict_do_nothing(index_elements=["sample_id", "application_id"])
        )
    tasks = await _tasks(session, sample)
    await audit.record(
        session,
        step_key=f"audit-sample:{region}:{period}",
        application_id=None,
        actor=actor,
        action="audit_sampled",
        at=now,
        region=region,
        period=period,
        approvals=len(population),
        sampled=[t.application_id for t in tasks],
        seed=seed,
    )
    return Drawn(sample, tasks, created=True)


def redraw(sample: AuditSample) -> list[str]:
    """The applications the sample's own seed, rate and population give (for a check)."""
    return audit_sample(sample.population, sample.rate, sample.seed)


@dataclass(frozen=True)
class Decided:
    task: AuditTask
    revoked: Benefit | None  # the benefit revoked by a forged finding


async def decide(
    session: AsyncSession,
    task_id: int,
    *,
    forged: bool,
    note: str,
    actor: str,
    now: datetime,
    revoke_from: date,
) -> Decided:
    """Record a task's finding; a forged one revokes the benefit from ``revoke_from``.

    Raises:
        AuditRefused: no such task, already decided, a note with personal data, or a revocation
            date before the benefit began.
    """
    problem = text.problem(note, field="--note", max_length=500)
    if problem is not None:
        raise AuditRefused(problem)
    if not note.strip():
        raise AuditRefused("--note is empty: say what was checked, it goes into the audit trail")
    task = await session.get(AuditTask, task_id, with_for_update=True)
    if task is None:
        raise AuditRefused(f"no audit task {task_id}; `chronic audit list` shows them")
    if task.status != "open":
        raise AuditRefused(
            f"audit task {task_id} was decided already ({task.status} by {task.decided_by} on "
            f"{task.decided_at:%Y-%m-%d})"
        )
    revoked: Benefit | None = None
    if forged:
        revoked = await session.scalar(
            sa.select(Benefit)
            .where(col(Benefit.application_id) == task.application_id)
            .with_for_update()
        )
        if revoked is None:
            raise AuditRefused(f"{task.application_id} has no benefit to revoke")
        if revoke_from < revoked.valid_from:
            raise AuditRefused(
                f"--revoke-from {revoke_from} is before the benefit began ({revoked.valid_from})"
            )
        revoked.status = "revoked"
        revoked.valid_to = revoke_from
        session.add(revoked)
    task.status = "forged" if forged else "ok"
    task.note = note.strip()
    task.decided_by = actor
    task.decided_at = now
    task.revoked_from = revoke_from if forged else None
    session.add(task)
    await audit.record(
        session,
        step_key=f"audit-task:{task_id}:decided",
        application_id=task.application_id,
        actor=actor,
        action="audit_forged" if forged else "audit_ok",
        at=now,
        task=task_id,
        note=task.note,
        revoked_from=revoke_from.isoformat() if forged else None,
    )
    return Decided(task, revoked)


async def _sample(session: AsyncSession, region: str, period: str) -> AuditSample | None:
    return await session.scalar(
        sa.select(AuditSample).where(
            col(AuditSample.region) == region, col(AuditSample.period) == period
        )
    )


async def _tasks(session: AsyncSession, sample: AuditSample) -> list[AuditTask]:
    return list(
        await session.scalars(
            sa.select(AuditTask)
            .where(col(AuditTask.sample_id) == sample.id)
            .order_by(col(AuditTask.application_id))
        )
    )
