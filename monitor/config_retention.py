"""`retention:` how long each kind of stored row is kept before the purge job deletes it.

A period of `null` keeps that kind forever. The audit log has no entry here: it is never
purged (its signed checkpoints vouch for the whole chain, from seq 1).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from monitor.config_types import Duration

DAY = 86400.0


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Ingested feature samples (POST /v1/models/{model}/samples), by their own timestamp; the labels
    # posted for them (POST /v1/labels) too, except a performance reference's (retention_labels.py).
    samples: Duration | None = 14 * DAY
    # Evidently drift reports, by when they were rendered.
    drift_reports: Duration | None = 90 * DAY
    # Incidents resolved longer ago than this (with their drift report); their actions stay,
    # unlinked, and the audit log keeps every step.
    resolved_incidents: Duration | None = 365 * DAY
    # Notifications delivered longer ago than this; pending and failed ones are never purged.
    delivered_outbox: Duration | None = 7 * DAY
    # How often the daemon purges; `vigil db purge --config FILE` does the same on demand.
    purge_interval: Duration = Field(3600.0, gt=0)
    # Rows per DELETE statement, so a first purge of a large store never holds a long lock.
    batch_rows: int = Field(5000, ge=100)
