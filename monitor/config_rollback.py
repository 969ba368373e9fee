"""`policy.rollback`: the automatic rollback's guards (alerts/policy.py applies them)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from monitor.config_types import Duration, PositiveDuration


class RollbackPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    dry_run: bool = False
    cooldown: Duration = 6 * 3600.0
    max_per_day: int = Field(2, ge=0)
    min_confidence: float = Field(0.6, ge=0, le=1)
    # A version is "known good" (a default rollback target) after this many clean cycles:
    # serving, no open incident, no source blind.
    known_good_after_cycles: int = Field(30, ge=1)
    # A version an incident suspected, or a rollback moved away from, is not a default
    # target for this long; moving to it takes to_version, force and a reason.
    blame_window: Duration = 7 * 86400.0
    max_attempts: int = Field(10, ge=1)  # cycles a rollback retries an unreachable layer before it fails
    # A rollback (Vigil's or a person's) that moved nothing within this is abandoned, never made
    # later: after a long outage or stop, what was right to do then is stale (rollback_pending).
    pending_ttl: PositiveDuration = 1800.0
    # Vigil's own rollbacks, all models, per fleet_window (more is likelier one shared cause); top level only
    fleet_max: int | None = Field(5, ge=1)  # null: no cap
    fleet_window: PositiveDuration = 3600.0
