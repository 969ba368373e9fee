"""model_state.alias_of: which registered model and alias `alias_version` was read from.

A configuration naming another alias (or registered model) diffed the new alias against the
old one's version: a deploy nobody made, blamed and rolled back onto the new alias. Existing
rows start unknown (NULL) and are taken as the configured alias's, filled in on the next poll.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_model_state_alias_of"
down_revision = "0007_ack_severity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_state", sa.Column("alias_of", sa.String(length=400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_state") as batch:
        batch.drop_column("alias_of")
