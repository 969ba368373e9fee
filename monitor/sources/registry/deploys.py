"""Deploy detection: MLflow keeps no alias history, so a deploy is the diff between the
alias's version now and the last one Vigil stored."""
from __future__ import annotations

from detectors.records import DeployEvent


def detect_alias_move(
    *, model: str, alias: str, last_known: str | None, current: str | None, at: float
) -> DeployEvent | None:
    """The diff of one poll: a DeployEvent if the alias now points elsewhere.

    `last_known` is what the store held (None on the very first poll: the caller decides
    whether a first sighting is a deploy); `current` None means the alias or the model
    is gone, which is not a deploy (the caller logs it).
    """
    if current is None:
        return None
    current = str(current)
    last = None if last_known is None else str(last_known)
    if current == last:
        return None
    return DeployEvent(model=model, alias=alias, version=current, previous_version=last, at=at, source="registry")

