"""What a deploy cause's explanation tells on-call to do (correlators/causes.py ranks it):
roll the alias back, or, when the alias moved since the blamed deploy, judge what serves now."""
from __future__ import annotations

from datetime import UTC, datetime

from detectors.records import DeployEvent


def fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def deploy_advice(d: DeployEvent, replaced: DeployEvent | None, replaced_forward: bool,
                  only_no_data: bool = False) -> str:
    """`replaced`: the move of the alias, not Vigil's rollback, that took `d`'s place since;
    `replaced_forward`: that move went to a newer version (a fix forward, not a revert);
    `only_no_data`: the deploy's only symptoms are series that stopped after it
    (correlators/no_data.py): the version may no longer export them, or their target went away."""
    prev = f"v{d.previous_version}" if d.previous_version else "an earlier version"
    if replaced is not None and not replaced_forward:  # a revert by hand: nothing left to roll back
        return (f"v{d.version} no longer serves: '{d.alias}' went back to v{replaced.version} at "
                f"{fmt_time(replaced.at)}, after the symptoms began; check they recover with it.")
    if replaced is not None:  # "roll back to v1" while v3 serves would take v3 out unsaid
        return (f"v{d.version} no longer serves: v{replaced.version} took '{d.alias}' at {fmt_time(replaced.at)}, "
                f"after the symptoms began, and a rollback to {prev} now takes v{replaced.version} out. Judge "
                f"v{replaced.version} on the signals since; roll back with to_version if it did not fix them.")
    check = (f"{NO_DATA_CHECK} If this version dropped them" if only_no_data
             else "If the symptoms started with this version")
    if d.previous_version is None:  # no version Vigil saw before it: no rollback target to name
        return (f"{check}, roll back with to_version naming the version '{d.alias}' should serve (Vigil has "
                f"not seen one before v{d.version}; the registry lists them, and if v{d.version} is the model's "
                "first there is none: fix forward).")
    return f"{check}, roll '{d.alias}' back to {prev} and compare the versions' offline metrics before redeploying."


# A deploy blamed for "no data" only: series it read until after it, none since.
NO_DATA_CHECK = ("Its only symptoms are series that stopped after it: check whether this version still exports "
                 "them (a metric renamed or removed with it) or their scrape target went away.")
