"""Months of outpatient settlements per person and disease: what the renewal check counts.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settlement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("disease_code", sa.String(length=16), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("normal", sa.Boolean(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["insured_person.id"],
            name=op.f("fk_settlement_person_id_insured_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement")),
        sa.UniqueConstraint(
            "person_id", "disease_code", "month", name=op.f("uq_settlement_person_id")
        ),
    )
    op.create_index(op.f("ix_settlement_person_id"), "settlement", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_settlement_person_id"), table_name="settlement")
    op.drop_table("settlement")
