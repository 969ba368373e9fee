"""Incident and outbox ids are never given again (SQLite AUTOINCREMENT).

SQLite gives a new row the id after the highest one left, so once the retention purge
deleted the newest incidents or delivered messages, a new incident got an old one's id
(its Slack buttons and links then acted on the new one) and a new message an old one's
id (receivers deduplicate on it: the webhook's Idempotency-Key, Slack's lookup of an
uncertain send). On SQLite both tables are rebuilt with AUTOINCREMENT, rows and ids kept;
PostgreSQL's sequences never reuse an id, so nothing changes there.
"""
from __future__ import annotations

from alembic import op

revision = "0005_ids_never_reused"
down_revision = "0004_state_rows_profile_gz"
branch_labels = None
depends_on = None

TABLES = ("incidents", "outbox")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    before = _dangling()
    for table in TABLES:  # foreign keys are off here (monitor/store/schema.py): actions and drift
        with op.batch_alter_table(table, recreate="always",  # reports point at incidents
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    broken = _dangling() - before
    if broken:
        raise RuntimeError(f"rows left pointing at no row after rebuilding {TABLES}: {sorted(broken)[:5]}")


def _dangling() -> set[tuple[object, ...]]:
    return {tuple(r) for r in op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").all()}


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
