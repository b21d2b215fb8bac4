"""Each offer keeps the pool it was drawn from and the seed of the draw (verifiable draws).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "offer",
        sa.Column(
            "candidates",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.add_column("offer", sa.Column("draw_seed", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("offer", "draw_seed")
    op.drop_column("offer", "candidates")
