"""The expert's mobile: where the offer of a review task and its reminder are sent.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("expert", sa.Column("mobile", sa.String(length=20), nullable=True))


def downgrade() -> None:
    op.drop_column("expert", "mobile")
