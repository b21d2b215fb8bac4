"""What Wuhan's and Jilin's forms ask beyond the common fields, and the pharmacy register.

- ``pharmacy``: designated retail pharmacies (定点药店) by region; an application's chosen
  pharmacy must be one of them.
- ``application``: the applicant's address (现住址) and insured district (参保辖区), outpatient or
  inpatient diagnosis and the inpatient number (住院号), the chosen community health centre
  (定点社区卫生服务中心) and pharmacy, and the proxy (代办人) who submitted, if any. All nullable:
  which of them a region's form requires is its policy profile's (``form``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pharmacy",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_pharmacy")),
    )
    op.create_index(op.f("ix_pharmacy_region"), "pharmacy", ["region"], unique=False)

    op.add_column("application", sa.Column("address", sa.String(length=200), nullable=True))
    op.add_column("application", sa.Column("insured_district", sa.String(length=40), nullable=True))
    op.add_column(
        "application", sa.Column("diagnosis_setting", sa.String(length=16), nullable=True)
    )
    op.add_column("application", sa.Column("inpatient_number", sa.String(length=40), nullable=True))
    op.add_column(
        "application", sa.Column("community_health_centre_code", sa.String(), nullable=True)
    )
    op.add_column("application", sa.Column("designated_pharmacy_code", sa.String(), nullable=True))
    op.add_column("application", sa.Column("proxy_name", sa.String(length=40), nullable=True))
    op.add_column("application", sa.Column("proxy_id_number", sa.String(length=18), nullable=True))
    op.add_column("application", sa.Column("proxy_mobile", sa.String(length=20), nullable=True))
    op.create_foreign_key(
        op.f("fk_application_community_health_centre_code_hospital"),
        "application",
        "hospital",
        ["community_health_centre_code"],
        ["code"],
    )
    op.create_foreign_key(
        op.f("fk_application_designated_pharmacy_code_pharmacy"),
        "application",
        "pharmacy",
        ["designated_pharmacy_code"],
        ["code"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_application_designated_pharmacy_code_pharmacy"), "application", type_="foreignkey"
    )
    op.drop_constraint(
        op.f("fk_application_community_health_centre_code_hospital"),
        "application",
        type_="foreignkey",
    )
    for column in (
        "proxy_mobile",
        "proxy_id_number",
        "proxy_name",
        "designated_pharmacy_code",
        "community_health_centre_code",
        "inpatient_number",
        "diagnosis_setting",
        "insured_district",
        "address",
    ):
        op.drop_column("application", column)
    op.drop_index(op.f("ix_pharmacy_region"), table_name="pharmacy")
    op.drop_table("pharmacy")
