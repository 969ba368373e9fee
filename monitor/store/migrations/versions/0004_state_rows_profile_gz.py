"""Detector state in rows of its own, written only when it changes; reference profiles
and the last cycle's drift per feature stored compressed.

`detector_states` holds each model's detector state one row per series (packed floats,
monitor/store/detector_states.py) instead of one JSON document in
`model_state.detector_state` rewritten whole every cycle. Existing states stay in that
column and are read from there until the model's next cycle moves them (nothing is
converted here: a store holding thousands of models upgrades at once).

`reference_profiles.profile_gz` holds the gzip of a profile (about 3.5 times smaller);
rows written before keep `profile` and read back unchanged. `model_now.drift_gz` holds the
zlib of the drift per feature (JSON), rewritten every cycle; rows written before keep `drift`.
"""
from __future__ import annotations

import gzip
import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0004_state_rows_profile_gz"
down_revision = "0003_lifecycle_canary_labels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('detector_states',
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('part', sa.String(length=10), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('model', 'key', 'part')
    )
    op.add_column("reference_profiles", sa.Column("profile_gz", sa.LargeBinary(), nullable=True))
    op.add_column("model_now", sa.Column("drift_gz", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """States go back into `model_state.detector_state` as JSON, profiles into `profile`,
    drift into `model_now.drift`: a downgrade loses no state (no cold start) and no profile."""
    from monitor.store.detector_states import decode_rows

    bind = op.get_bind()
    by_model: dict[str, dict[tuple[str, str], bytes]] = {}
    for model, key, part, data in bind.execute(sa.text("SELECT model, key, part, data FROM detector_states")):
        by_model.setdefault(model, {})[(key, part)] = bytes(data)
    for model, rows in by_model.items():
        bind.execute(sa.text("UPDATE model_state SET detector_state = :s WHERE model = :m"),
                     {"s": json.dumps(decode_rows(rows)), "m": model})
    for model, version, source, blob in bind.execute(sa.text(
            "SELECT model, version, source, profile_gz FROM reference_profiles WHERE profile_gz IS NOT NULL")).all():
        bind.execute(sa.text("UPDATE reference_profiles SET profile = :p WHERE model = :m AND version = :v "
                             "AND source = :s"), {"p": gzip.decompress(blob), "m": model, "v": version, "s": source})
    for model, blob in bind.execute(sa.text("SELECT model, drift_gz FROM model_now WHERE drift_gz IS NOT NULL")).all():
        bind.execute(sa.text("UPDATE model_now SET drift = :d WHERE model = :m"),
                     {"d": zlib.decompress(blob).decode(), "m": model})
    with op.batch_alter_table("model_now") as batch:
        batch.drop_column("drift_gz")
    with op.batch_alter_table("reference_profiles") as batch:
        batch.drop_column("profile_gz")
    op.drop_table('detector_states')
