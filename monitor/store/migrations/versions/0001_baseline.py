"""Baseline: the schema Vigil 0.1.0 created with `create_all`, before migrations existed.

A store made by that code has these tables and no `alembic_version`; `vigil db upgrade`
recognises it and stamps this revision instead of creating anything
(monitor/store/schema.py). The tables are frozen here as they were, in a metadata of
this revision's own, so a later change to monitor/store/tables.py never changes what
this revision creates.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

_META = sa.MetaData()


_ACTION_STATUSES = ("pending", "done", "dry_run", "noop", "refused", "failed")
_PENDING = sa.text("status = 'pending'")


def _status(name: str, *values: str) -> sa.Enum:
    """A status column as tables.py declares it: VARCHAR(20), no database enum, no CHECK."""
    return sa.Enum(*values, name=name, native_enum=False, length=20, create_constraint=False)


def _index(name: str, table: str, columns: list[str], unique: bool, **kw: Any) -> None:
    sa.Index(name, *(_META.tables[table].c[c] for c in columns), unique=unique, **kw)


sa.Table(
    'audit_log', _META,
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('hash')
)
sa.Table(
    'deploy_events', _META,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('alias', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('previous_version', sa.String(length=40), nullable=True),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id')
)
_index('ix_deploy_events_at', 'deploy_events', ['at'], unique=False)
_index('ix_deploy_events_model', 'deploy_events', ['model'], unique=False)
sa.Table(
    'idempotency_keys', _META,
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'scope'),
    sa.UniqueConstraint('key', 'scope')
)
sa.Table(
    'incidents', _META,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('status', _status('incidentstatus', 'open', 'resolved'), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('onset', sa.Float(), nullable=False),
    sa.Column('opened_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('resolved_at', sa.Float(), nullable=True),
    sa.Column('cold_start', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('causes', sa.JSON(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('silenced_until', sa.Float(), nullable=True),
    sa.Column('last_notified_at', sa.Float(), nullable=True),
    sa.Column('notified_digest', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
)
_index('ix_incidents_fingerprint', 'incidents', ['fingerprint'], unique=False)
_index('ix_incidents_model', 'incidents', ['model'], unique=False)
_index('ix_incidents_opened_at', 'incidents', ['opened_at'], unique=False)
_index('ix_incidents_status', 'incidents', ['status'], unique=False)
sa.Table(
    'known_good_versions', _META,
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('clean_cycles', sa.Integer(), nullable=False),
    sa.Column('first_clean_at', sa.Float(), nullable=False),
    sa.Column('last_clean_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('model', 'version')
)
sa.Table(
    'message_refs', _META,
    sa.Column('notifier', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('ref', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('notifier', 'key')
)
sa.Table(
    'model_leases', _META,
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('token', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('acquired_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('model')
)
_index('ix_model_leases_owner', 'model_leases', ['owner'], unique=False)
sa.Table(
    'model_state', _META,
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('alias_version', sa.String(length=40), nullable=True),
    sa.Column('alias_seen_at', sa.Float(), nullable=True),
    sa.Column('slo_streaks', sa.JSON(), nullable=False),
    sa.Column('detector_state', sa.JSON(), nullable=False),
    sa.Column('quiet_cycles', sa.Integer(), nullable=False),
    sa.Column('last_cycle_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('model')
)
sa.Table(
    'outbox', _META,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('notifier', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', _status('outboxstatus', 'pending', 'sending', 'delivered', 'failed'), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('next_attempt_at', sa.Float(), nullable=False),
    sa.Column('delivered_at', sa.Float(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
)
_index('ix_outbox_pending', 'outbox', ['status', 'next_attempt_at'], unique=False)
sa.Table(
    'reference_profiles', _META,
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('profile', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('model', 'version', 'source')
)
sa.Table(
    'replicas', _META,
    sa.Column('replica_id', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('heartbeat_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('replica_id')
)
_index('ix_replicas_heartbeat_at', 'replicas', ['heartbeat_at'], unique=False)
sa.Table(
    'samples', _META,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
)
_index('ix_samples_model_ts', 'samples', ['model', 'ts'], unique=False)
sa.Table(
    'slack_requests_seen', _META,
    sa.Column('request_ts', sa.BigInteger(), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('seen_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('request_ts', 'signature')
)
sa.Table(
    'actions', _META,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('from_version', sa.String(length=40), nullable=True),
    sa.Column('to_version', sa.String(length=40), nullable=True),
    sa.Column('status', _status('actionstatus', *_ACTION_STATUSES), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id')
)
_index('ix_actions_at', 'actions', ['at'], unique=False)
_index('ix_actions_model', 'actions', ['model'], unique=False)
sa.Table(
    'drift_reports', _META,
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('incident_id')
)
sa.Table(
    'rollback_intents', _META,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('action_id', sa.Integer(), nullable=True),
    sa.Column('from_version', sa.String(length=40), nullable=True),
    sa.Column('to_version', sa.String(length=40), nullable=False),
    sa.Column('executors', sa.JSON(), nullable=False),
    sa.Column('steps_done', sa.JSON(), nullable=False),
    sa.Column('fencing_token', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.Column('status', _status('actionstatus', *_ACTION_STATUSES), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.Float(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id')
)
_index('ix_rollback_intents_model_status', 'rollback_intents', ['model', 'status'], unique=False)
_index('uq_rollback_intents_one_pending', 'rollback_intents', ['model'], unique=True,
       postgresql_where=_PENDING, sqlite_where=_PENDING)

def upgrade() -> None:
    _META.create_all(op.get_bind())


def downgrade() -> None:
    _META.drop_all(op.get_bind())
