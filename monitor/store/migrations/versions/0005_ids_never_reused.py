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
    if op.get_bind().dialect.name == "sqlite":
        _seed_incident_ids()


def _seed_incident_ids() -> None:
    """Incidents purged before this upgrade left ids above the highest row: the audit log (never
    purged: acks, silences, refusals name `incident:<id>`) and open outbox rows still name
    some of them, so new incidents start above those too."""
    bind = op.get_bind()
    named = [t for (t,) in bind.exec_driver_sql("SELECT target FROM audit_log WHERE target LIKE 'incident:%' "
                                                "UNION SELECT key FROM outbox WHERE key LIKE 'incident:%'")]
    ids = [int(p[1]) for p in (t.split(":", 2) for t in named) if len(p) > 1 and p[1].isdigit()]
    top = max(ids, default=0)
    seq = bind.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'incidents'").scalar()
    if seq is None and top:
        bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('incidents', ?)", (top,))
    elif seq is not None and top > seq:
        bind.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = 'incidents'", (top,))


def downgrade() -> None:
    _rebuild(False)
