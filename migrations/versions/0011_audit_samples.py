"""Audit samples of approvals (抽审) and their tasks.

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("population", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_sample")),
        sa.UniqueConstraint("region", "period", name=op.f("uq_audit_sample_region")),
    )
    op.create_table(
        "audit_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_from", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["application.id"],
            name=op.f("fk_audit_task_application_id_application"),
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["audit_sample.id"], name=op.f("fk_audit_task_sample_id_audit_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_task")),
        sa.UniqueConstraint("sample_id", "application_id", name=op.f("uq_audit_task_sample_id")),
    )
    op.create_index(
        op.f("ix_audit_task_application_id"), "audit_task", ["application_id"], unique=False
    )
    op.create_index(op.f("ix_audit_task_sample_id"), "audit_task", ["sample_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_task_sample_id"), table_name="audit_task")
    op.drop_index(op.f("ix_audit_task_application_id"), table_name="audit_task")
    op.drop_table("audit_task")
    op.drop_table("audit_sample")
