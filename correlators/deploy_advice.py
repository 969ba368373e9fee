"""What a deploy cause's explanation tells on-call to do (correlators/causes.py ranks it):
roll the alias back, or, when the alias moved since the blamed deploy, judge what serves now."""
from __future__ import annotations

from datetime import UTC, datetime

from detectors.records import DeployEvent


def fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def deploy_advice(d: DeployEvent, replaced: DeployEvent | None, replaced_forward: bool) -> str:
    """`replaced`: the move of the alias, not Vigil's rollback, that took `d`'s place since;
    `replaced_forward`: that move went to a newer version (a fix forward, not a revert)."""
    prev = f"v{d.previous_version}" if d.previous_version else "the previous version"
    if replaced is not None and not replaced_forward:  # a revert by hand: nothing left to roll back
        return (f"v{d.version} no longer serves: '{d.alias}' went back to v{replaced.version} at "
                f"{fmt_time(replaced.at)}, after the symptoms began; check they recover with it.")
    if replaced is not None:  # "roll back to v1" while v3 serves would take v3 out unsaid
        return (f"v{d.version} no longer serves: v{replaced.version} took '{d.alias}' at {fmt_time(replaced.at)}, "
                f"after the symptoms began, and a rollback to {prev} now takes v{replaced.version} out. Judge "
                f"v{replaced.version} on the signals since; roll back with to_version if it did not fix them.")
    return (f"If the symptoms started with this version, roll '{d.alias}' back to {prev} "
            f"and compare the versions' offline metrics before redeploying.")
