"""Initial schema: the register, the catalogue, the expert pool and the application records.

Generated with ``alembic revision --autogenerate`` from models/tables.py and then edited: tables
grouped by dependency, SQLModel's AutoString rendered as ``sa.String`` (revisions do not import
sqlmodel), constraint names from the naming convention of models/tables.py (``op.f``), enums
as VARCHAR(32). The downgrade drops the tables, and their indexes and sequences with them.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:30:05.722556
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Children before parents, for the downgrade.
TABLES = (
    "audit_event",
    "sms_outbox",
    "benefit",
    "review",
    "offer",
    "material",
    "application",
    "expert",
    "settlement_month",
    "insured_person",
    "disease",
    "hospital",
)


def upgrade() -> None:
    op.create_table(
        "hospital",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=32), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("notice_mobile", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_hospital")),
    )
    op.create_index(op.f("ix_hospital_region"), "hospital", ["region"], unique=False)

    op.create_table(
        "disease",
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("instant_track", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("region", "code", name=op.f("pk_disease")),
    )
    op.create_index(op.f("ix_disease_category"), "disease", ["category"], unique=False)

    op.create_table(
        "insured_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("insurance_type", sa.String(length=32), nullable=False),
        sa.Column("insurance_status", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insured_person")),
        sa.UniqueConstraint("id_number", name=op.f("uq_insured_person_id_number")),
    )
    op.create_index(op.f("ix_insured_person_region"), "insured_person", ["region"], unique=False)

    op.create_table(
        "settlement_month",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("settlements", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["insured_person.id"],
            name=op.f("fk_settlement_month_person_id_insured_person"),
        ),
        sa.PrimaryKeyConstraint("person_id", "month", name=op.f("pk_settlement_month")),
    )

    op.create_table(
        "expert",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("hospital_code", sa.String(), nullable=False),
        sa.Column("title", sa.String(length=32), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("consecutive_strikes", sa.Integer(), nullable=False),
        sa.Column("disqualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_code"], ["hospital.code"], name=op.f("fk_expert_hospital_code_hospital")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_expert")),
    )
    op.create_index(op.f("ix_expert_hospital_code"), "expert", ["hospital_code"], unique=False)
    op.create_index(op.f("ix_expert_region"), "expert", ["region"], unique=False)
    op.create_index(op.f("ix_expert_status"), "expert", ["status"], unique=False)

    op.create_table(
        "application",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("disease_code", sa.String(length=16), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("case_number", sa.String(length=40), nullable=False),
        sa.Column("diagnosing_hospital_code", sa.String(), nullable=False),
        sa.Column("designated_hospital_code", sa.String(), nullable=False),
        sa.Column("submitted_by", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_reason", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["designated_hospital_code"],
            ["hospital.code"],
            name=op.f("fk_application_designated_hospital_code_hospital"),
        ),
        sa.ForeignKeyConstraint(
            ["diagnosing_hospital_code"],
            ["hospital.code"],
            name=op.f("fk_application_diagnosing_hospital_code_hospital"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["insured_person.id"],
            name=op.f("fk_application_person_id_insured_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application")),
    )
    op.create_index(
        "ix_application_person_disease_year",
        "application",
        ["person_id", "disease_code", "year"],
        unique=False,
    )
    op.create_index(op.f("ix_application_status"), "application", ["status"], unique=False)
    # At most one open application per person and disease: the race-free guard of submission
    # (a closed one, whatever its outcome, does not block the next).
    op.create_index(
        "uq_application_open_per_person_disease",
        "application",
        ["person_id", "disease_code"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )

    op.create_table(
        "material",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("hospital_code", sa.String(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("file_ref", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["application.id"],
            name=op.f("fk_material_application_id_application"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_code"], ["hospital.code"], name=op.f("fk_material_hospital_code_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_material")),
        sa.UniqueConstraint(
            "application_id", "round", "position", name=op.f("uq_material_application_id")
        ),
    )
    op.create_index(
        op.f("ix_material_application_id"), "material", ["application_id"], unique=False
    )

    op.create_table(
        "offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("expert_code", sa.String(), nullable=False),
        sa.Column("pool_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accept_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"], ["application.id"], name=op.f("fk_offer_application_id_application")
        ),
        sa.ForeignKeyConstraint(
            ["expert_code"], ["expert.code"], name=op.f("fk_offer_expert_code_expert")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer")),
        sa.UniqueConstraint("application_id", "expert_code", name="uq_offer_application_expert"),
        sa.UniqueConstraint("application_id", "seq", name=op.f("uq_offer_application_id")),
    )
    op.create_index(op.f("ix_offer_application_id"), "offer", ["application_id"], unique=False)
    op.create_index(op.f("ix_offer_expert_code"), "offer", ["expert_code"], unique=False)
    op.create_index(op.f("ix_offer_status"), "offer", ["status"], unique=False)

    op.create_table(
        "review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("expert_code", sa.String(), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("opinion", sa.String(length=2000), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["application.id"],
            name=op.f("fk_review_application_id_application"),
        ),
        sa.ForeignKeyConstraint(
            ["expert_code"], ["expert.code"], name=op.f("fk_review_expert_code_expert")
        ),
        sa.ForeignKeyConstraint(["offer_id"], ["offer.id"], name=op.f("fk_review_offer_id_offer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review")),
        sa.UniqueConstraint("offer_id", "seq", name=op.f("uq_review_offer_id")),
    )
    op.create_index(op.f("ix_review_application_id"), "review", ["application_id"], unique=False)

    op.create_table(
        "benefit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("disease_code", sa.String(length=16), nullable=False),
        sa.Column("designated_hospital_code", sa.String(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["application.id"],
            name=op.f("fk_benefit_application_id_application"),
        ),
        sa.ForeignKeyConstraint(
            ["designated_hospital_code"],
            ["hospital.code"],
            name=op.f("fk_benefit_designated_hospital_code_hospital"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["insured_person.id"], name=op.f("fk_benefit_person_id_insured_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit")),
        sa.UniqueConstraint("application_id", name=op.f("uq_benefit_application_id")),
    )
    op.create_index(op.f("ix_benefit_person_id"), "benefit", ["person_id"], unique=False)

    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("application_id", sa.String(length=32), nullable=True),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_sms_outbox_dedup_key")),
    )
    op.create_index(
        op.f("ix_sms_outbox_application_id"), "sms_outbox", ["application_id"], unique=False
    )
    op.create_index(op.f("ix_sms_outbox_status"), "sms_outbox", ["status"], unique=False)

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=200), nullable=False),
        sa.Column("application_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("step_key", name=op.f("uq_audit_event_step_key")),
    )
    op.create_index(
        op.f("ix_audit_event_application_id"), "audit_event", ["application_id"], unique=False
    )
    op.create_index(op.f("ix_audit_event_at"), "audit_event", ["at"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
