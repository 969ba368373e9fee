"""idempotency_keys.created_at indexed: the purge deletes expired Idempotency-Key answers.

Samples batches now take an Idempotency-Key too (one row per keyed batch, 24 h), so the
table grows with ingest; the hourly purge finds the expired rows by this index instead of
reading the whole table.
"""
from __future__ import annotations

from alembic import op

revision = "0011_idempotency_created_at"
down_revision = "0010_intent_settling_since"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_idempotency_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_created_at", table_name="idempotency_keys")
