"""The online service hall: staff accounts, sessions, one-time sign-in codes, rate limits.

Revision ID: 0012
Revises: 0011

Written as 0010 on 0009; numbered after the audit samples' 0011 (also written on 0009, merged
first) so that a database already at 0011 gets these tables by a plain upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hall_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("expert_code", sa.String(length=16), nullable=True),
        sa.Column("hospital_code", sa.String(length=16), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["expert_code"], ["expert.code"], name=op.f("fk_hall_user_expert_code_expert")
        ),
        sa.ForeignKeyConstraint(
            ["hospital_code"], ["hospital.code"], name=op.f("fk_hall_user_hospital_code_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hall_user")),
        sa.UniqueConstraint("expert_code", name=op.f("uq_hall_user_expert_code")),
        sa.UniqueConstraint("username", name=op.f("uq_hall_user_username")),
    )
    op.create_table(
        "hall_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["insured_person.id"],
            name=op.f("fk_hall_session_person_id_insured_person"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["hall_user.id"], name=op.f("fk_hall_session_user_id_hall_user")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_hall_session")),
    )
    op.create_index(
        op.f("ix_hall_session_expires_at"), "hall_session", ["expires_at"], unique=False
    )
    op.create_index(op.f("ix_hall_session_person_id"), "hall_session", ["person_id"], unique=False)
    op.create_index(op.f("ix_hall_session_user_id"), "hall_session", ["user_id"], unique=False)
    op.create_table(
        "sign_in_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["insured_person.id"],
            name=op.f("fk_sign_in_code_person_id_insured_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_code")),
    )
    op.create_index(op.f("ix_sign_in_code_person_id"), "sign_in_code", ["person_id"], unique=False)
    op.create_table(
        "hall_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hall_throttle")),
    )
    op.create_index(
        "ix_hall_throttle_kind_key_at", "hall_throttle", ["kind", "key", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_hall_throttle_kind_key_at", table_name="hall_throttle")
    op.drop_table("hall_throttle")
    op.drop_index(op.f("ix_sign_in_code_person_id"), table_name="sign_in_code")
    op.drop_table("sign_in_code")
    op.drop_index(op.f("ix_hall_session_user_id"), table_name="hall_session")
    op.drop_index(op.f("ix_hall_session_person_id"), table_name="hall_session")
    op.drop_index(op.f("ix_hall_session_expires_at"), table_name="hall_session")
    op.drop_table("hall_session")
    op.drop_table("hall_user")
