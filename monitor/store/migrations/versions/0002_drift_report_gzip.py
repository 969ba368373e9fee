"""Drift reports stored gzip-compressed.

An Evidently report is 4-5 MB of HTML; gzip makes it about 3.6 times smaller. New rows keep
`html` empty and hold the report in `html_gz`; rows written before keep their `html`
and read back unchanged (monitor/store/reports.py).
"""
from __future__ import annotations

import gzip

import sqlalchemy as sa
from alembic import op

revision = "0002_drift_report_gzip"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("drift_reports", sa.Column("html_gz", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """The compressed reports go back into `html` first: a downgrade loses no report."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT incident_id, html_gz FROM drift_reports WHERE html_gz IS NOT NULL")).all()
    for incident_id, blob in rows:
        bind.execute(sa.text("UPDATE drift_reports SET html = :html WHERE incident_id = :id"),
                     {"html": gzip.decompress(blob).decode("utf-8"), "id": incident_id})
    with op.batch_alter_table("drift_reports") as batch:
        batch.drop_column("html_gz")
