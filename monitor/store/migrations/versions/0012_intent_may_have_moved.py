"""rollback_intents.may_have_moved: whether a failed attempt may have reached a layer's write.

A rollback recorded failed is taken for the author of a later move of the alias to its
target (its answer lost, the move landed) once any attempt had failed, including ones that
only failed to read (MLflow down) and cannot have moved anything: a person's revert by hand
was then recorded and announced as Vigil's rollback. Intents from before the upgrade keep
that reading (an attempt counted as one that may have moved).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_intent_may_have_moved"
down_revision = "0011_idempotency_created_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollback_intents", sa.Column("may_have_moved", sa.Boolean(), nullable=False,
                                                server_default=sa.false()))
    op.execute(sa.text("UPDATE rollback_intents SET may_have_moved = (attempts > 0)"))


def downgrade() -> None:
    with op.batch_alter_table("rollback_intents") as batch:
        batch.drop_column("may_have_moved")
