"""The monthly expert statistic each hospital receives, kept as sent.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "expert_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("hospital_code", sa.String(), nullable=False),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_code"],
            ["hospital.code"],
            name=op.f("fk_expert_report_hospital_code_hospital"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_report")),
        sa.UniqueConstraint(
            "region", "month", "hospital_code", name=op.f("uq_expert_report_region")
        ),
    )
    op.create_index(
        op.f("ix_expert_report_hospital_code"), "expert_report", ["hospital_code"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_expert_report_hospital_code"), table_name="expert_report")
    op.drop_table("expert_report")
