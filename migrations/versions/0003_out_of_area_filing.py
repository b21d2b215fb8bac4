"""Out-of-area care filing (异地就医备案, seed 001): its row, its uploads, its SMS and audit.

- ``filing``: one filing per row (ID ``FIL-YYYYMMDD-XXXXXX``, also its workflow ID), the
  person by register ID, the contact person and the mobile given on the form, status with
  ordered writes (``status_seq``), reasons, validity; at most one open filing per person
  (partial unique index on ``closed_at IS NULL``).
- ``filing_upload``: the documents uploaded with a filing.
- ``sms_outbox.filing_id``, ``audit_event.filing_id``: SMS and audit events about a filing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "filing",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("insured_place", sa.String(length=6), nullable=False),
        sa.Column("destination_province", sa.String(length=20), nullable=False),
        sa.Column("destination_city", sa.String(length=40), nullable=False),
        sa.Column("insurance_type", sa.String(length=32), nullable=False),
        sa.Column("filing_type", sa.String(length=32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("contact_name", sa.String(length=40), nullable=False),
        sa.Column("contact_mobile", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_seq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "reasons",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default="[]",
        ),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["insured_person.id"], name=op.f("fk_filing_person_id_insured_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing")),
    )
    op.create_index(op.f("ix_filing_person_id"), "filing", ["person_id"], unique=False)
    op.create_index(op.f("ix_filing_status"), "filing", ["status"], unique=False)
    # At most one filing in progress per person: the race-free guard of submission.
    op.create_index(
        "uq_filing_open_per_person",
        "filing",
        ["person_id"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )

    op.create_table(
        "filing_upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filing_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("file_ref", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["filing_id"], ["filing.id"], name=op.f("fk_filing_upload_filing_id_filing")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_upload")),
        sa.UniqueConstraint("filing_id", "position", name=op.f("uq_filing_upload_filing_id")),
    )
    op.create_index(
        op.f("ix_filing_upload_filing_id"), "filing_upload", ["filing_id"], unique=False
    )

    for table in ("sms_outbox", "audit_event"):
        op.add_column(table, sa.Column("filing_id", sa.String(length=32), nullable=True))
        op.create_index(op.f(f"ix_{table}_filing_id"), table, ["filing_id"], unique=False)


def downgrade() -> None:
    for table in ("audit_event", "sms_outbox"):
        op.drop_index(op.f(f"ix_{table}_filing_id"), table_name=table)
        op.drop_column(table, "filing_id")
    op.drop_table("filing_upload")
    op.drop_table("filing")
