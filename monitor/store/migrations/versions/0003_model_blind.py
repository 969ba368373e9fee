"""model_blind: what each model's last cycle could not see, for `vigil status`.

A new table only; stores upgraded to this revision start with no rows, filled by the
next cycle of each model.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_model_blind"
down_revision = "0002_drift_report_gzip"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_blind",
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model"),
    )


def downgrade() -> None:
    op.drop_table("model_blind")
