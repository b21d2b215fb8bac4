"""Failure paths: ordered status writes, provisional SLA targets, re-offers, office notices.

- ``application.status_seq``: each status write carries the workflow's sequence number and
  applies only when it is newer, so a late retry never overwrites a newer status.
- ``application.sla_provisional``: the SLA target was counted without the official holiday
  list of its year.
- ``uq_offer_application_expert`` dropped: once everyone eligible has been tried, an expert who
  only let an offer lapse may be offered the same application again.
- ``office_notice``: what the office's desk must act on (an exhausted pool, a stuck case).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "application",
        sa.Column("status_seq", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "application",
        sa.Column("sla_provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.drop_constraint("uq_offer_application_expert", "offer", type_="unique")
    op.create_table(
        "office_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=200), nullable=False),
        sa.Column("application_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_office_notice")),
        sa.UniqueConstraint("step_key", name=op.f("uq_office_notice_step_key")),
    )
    op.create_index(
        op.f("ix_office_notice_application_id"), "office_notice", ["application_id"], unique=False
    )
    op.create_index(op.f("ix_office_notice_kind"), "office_notice", ["kind"], unique=False)
    op.create_index(op.f("ix_office_notice_at"), "office_notice", ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("office_notice")
    op.create_unique_constraint(
        "uq_offer_application_expert", "offer", ["application_id", "expert_code"]
    )
    op.drop_column("application", "sla_provisional")
    op.drop_column("application", "status_seq")
