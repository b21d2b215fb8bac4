"""Editions of the rules, kept by digest; each application names the edition it is decided by.

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_version",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("profile", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_policy_version")),
    )
    op.create_index(op.f("ix_policy_version_region"), "policy_version", ["region"], unique=False)
    op.add_column("application", sa.Column("policy_digest", sa.String(length=64), nullable=True))
    op.create_foreign_key(
        op.f("fk_application_policy_digest_policy_version"),
        "application",
        "policy_version",
        ["policy_digest"],
        ["digest"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_application_policy_digest_policy_version"), "application", type_="foreignkey"
    )
    op.drop_column("application", "policy_digest")
    op.drop_index(op.f("ix_policy_version_region"), table_name="policy_version")
    op.drop_table("policy_version")
