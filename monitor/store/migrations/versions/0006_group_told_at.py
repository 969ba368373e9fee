"""alert_groups.told_at: when a shared cause's page last told someone.

grouping.repeat_interval counted from `notified_at`, which also moves when the group's
message is only edited (a member joins or leaves), so a churning shared cause was never
reminded. The reminder now counts from `told_at`; an open group of an existing store
starts from its `notified_at` (its last page, or a later edit: at worst one reminder late).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_group_told_at"
down_revision = "0005_ids_never_reused"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alert_groups", sa.Column("told_at", sa.Float(), nullable=True))
    op.execute("UPDATE alert_groups SET told_at = notified_at")


def downgrade() -> None:
    with op.batch_alter_table("alert_groups") as batch:
        batch.drop_column("told_at")
