"""Tables of the on-call lifecycle, canary analysis, delayed labels and the models API.

New tables only, all empty after the upgrade: silences and shared-cause groups
(alert_groups, alert_group_members), canary verdicts and runs, delayed labels and the
last performance report per model, and model_now (what each model's last cycle saw:
`GET /v1/models` and `vigil status` read it; the next cycle of each model fills it).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_lifecycle_canary_labels"
down_revision = "0002_drift_report_gzip"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_groups',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('open_key', sa.String(length=300), nullable=True),
    sa.Column('cause_kind', sa.String(length=40), nullable=False),
    sa.Column('cause', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('notified_at', sa.Float(), nullable=True),
    sa.Column('notified_digest', sa.String(length=64), nullable=True),
    sa.Column('notified_severity', sa.String(length=20), nullable=True),
    sa.Column('resolved_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_key')
    )
    op.create_index(op.f('ix_alert_groups_key'), 'alert_groups', ['key'], unique=False)
    op.create_table('canary_runs',
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('challenger_version', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('cycles', sa.Integer(), nullable=False),
    sa.Column('pass_streak', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('model', 'challenger_version')
    )
    op.create_table('canary_verdicts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('t', sa.Float(), nullable=False),
    sa.Column('champion_version', sa.String(length=40), nullable=True),
    sa.Column('challenger_version', sa.String(length=40), nullable=False),
    sa.Column('overall', sa.String(length=20), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_canary_verdicts_model_t', 'canary_verdicts', ['model', 't'], unique=False)
    op.create_table('labels',
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('prediction_id', sa.String(length=200), nullable=False),
    sa.Column('label', sa.Float(), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('received_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('model', 'prediction_id')
    )
    op.create_index('ix_labels_model_ts', 'labels', ['model', 'ts'], unique=False)
    op.create_table('model_now',
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('step', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('blind', sa.JSON(), nullable=False),
    sa.Column('drift', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('model')
    )
    op.create_table('performance_reports',
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('model')
    )
    op.create_table('silences',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('matchers', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.Float(), nullable=False),
    sa.Column('ends_at', sa.Float(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_silences_ends_at'), 'silences', ['ends_at'], unique=False)
    op.create_table('alert_group_members',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=False),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.Column('joined_at', sa.Float(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['alert_groups.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('group_id', 'model')
    )
    op.create_index(op.f('ix_alert_group_members_incident_id'), 'alert_group_members', ['incident_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_alert_group_members_incident_id'), table_name='alert_group_members')
    op.drop_table('alert_group_members')
    op.drop_index(op.f('ix_silences_ends_at'), table_name='silences')
    op.drop_table('silences')
    op.drop_table('performance_reports')
    op.drop_table('model_now')
    op.drop_index('ix_labels_model_ts', table_name='labels')
    op.drop_table('labels')
    op.drop_index('ix_canary_verdicts_model_t', table_name='canary_verdicts')
    op.drop_table('canary_verdicts')
    op.drop_table('canary_runs')
    op.drop_index(op.f('ix_alert_groups_key'), table_name='alert_groups')
    op.drop_table('alert_groups')
