"""incidents.acknowledged_severity: the severity an ack was given at.

An ack covers the severity acknowledged; an escalation above it lapses it. What was
acknowledged was taken to be the severity last told, but the API shows an incident at its
own severity: an ack given there while a silence held the escalation back took the critical,
and lapsed when the silence ended. An incident acknowledged before the upgrade keeps the
old reading (NULL: the severity last told).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_ack_severity"
down_revision = "0006_group_told_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("acknowledged_severity", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("acknowledged_severity")
