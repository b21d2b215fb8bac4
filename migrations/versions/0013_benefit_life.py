"""The benefit after approval: its designated pharmacy, a hospital stay, and its events.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("benefit", sa.Column("pharmacy_code", sa.String(length=16), nullable=True))
    op.add_column("benefit", sa.Column("in_hospital_since", sa.Date(), nullable=True))
    op.add_column(
        "benefit",
        sa.Column("event_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "benefit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=True),
        sa.Column("from_code", sa.String(length=16), nullable=True),
        sa.Column("to_code", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["benefit.application_id"],
            name=op.f("fk_benefit_event_application_id_benefit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_event")),
        sa.UniqueConstraint("application_id", "seq", name=op.f("uq_benefit_event_application_id")),
    )
    op.create_index(
        op.f("ix_benefit_event_application_id"), "benefit_event", ["application_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_benefit_event_application_id"), table_name="benefit_event")
    op.drop_table("benefit_event")
    op.drop_column("benefit", "event_seq")
    op.drop_column("benefit", "in_hospital_since")
    op.drop_column("benefit", "pharmacy_code")
