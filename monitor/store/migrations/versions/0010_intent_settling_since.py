"""rollback_intents.settling_since: when the layer a rollback waits for was set.

The 15-minute wait for a serving layer still rolling out counted from the rollback's
request, so one that first retried an unreachable API server (or waited for its lease) had
only what was left for the controller to roll out, and failed while landing. Intents
pending at the upgrade start unknown (NULL): the first attempt after it that finds the
layer still rolling out starts the wait then (a wait begun before the upgrade gets up to
15 minutes more, never less); one failing otherwise is judged as before, by attempts.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_intent_settling_since"
down_revision = "0009_label_sends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollback_intents", sa.Column("settling_since", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollback_intents") as batch:
        batch.drop_column("settling_since")
