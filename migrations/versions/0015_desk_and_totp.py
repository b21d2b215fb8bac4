"""The hall's hospital desks and second factor: which hospital submitted an application, and
each staff account's TOTP secret (sealed) with the last time step it accepted.

Revision ID: 0015
Revises: 0014

Applications submitted by a hospital before this revision were submitted by the desk of their
diagnosing hospital (the only desk that applied: `chronic submit` and the demo's track A), so
their submitting hospital is filled in from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "application",
        sa.Column("submitting_hospital_code", sa.String(length=16), nullable=True),
    )
    op.create_foreign_key(
        op.f("fk_application_submitting_hospital_code_hospital"),
        "application",
        "hospital",
        ["submitting_hospital_code"],
        ["code"],
    )
    op.create_index(
        op.f("ix_application_submitting_hospital_code"),
        "application",
        ["submitting_hospital_code"],
        unique=False,
    )
    op.execute(
        "UPDATE application SET submitting_hospital_code = diagnosing_hospital_code "
        "WHERE submitted_by = 'hospital'"
    )
    op.add_column("hall_user", sa.Column("totp_secret", sa.String(length=400), nullable=True))
    op.add_column(
        "hall_user", sa.Column("totp_confirmed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("hall_user", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("hall_user", "totp_last_step")
    op.drop_column("hall_user", "totp_confirmed_at")
    op.drop_column("hall_user", "totp_secret")
    op.drop_index(op.f("ix_application_submitting_hospital_code"), table_name="application")
    op.drop_constraint(
        op.f("fk_application_submitting_hospital_code_hospital"), "application", type_="foreignkey"
    )
    op.drop_column("application", "submitting_hospital_code")
