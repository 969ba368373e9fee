"""label_sends: when a label dated after the server's clock first arrived.

Such a label is read as known when it arrives; its retry (at-least-once delivery) was read
as arriving at the retry, later than a correction sent meanwhile, and undid it. The first
arrival of each (prediction, date as sent, label) is kept so a retry reads as that. A new
table, empty after the upgrade: labels already stored keep their times.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_label_sends"
down_revision = "0008_model_state_alias_of"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("label_sends",
                    sa.Column("model", sa.String(length=100), nullable=False),
                    sa.Column("prediction_id", sa.String(length=200), nullable=False),
                    sa.Column("sent_ts", sa.Float(), nullable=False),
                    sa.Column("label", sa.Float(), nullable=False),
                    sa.Column("first_seen", sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint("model", "prediction_id", "sent_ts", "label"))


def downgrade() -> None:
    op.drop_table("label_sends")
