"""Which panel of a model dashboard shows a finding: the builder marks the panel it makes
for a KPI, an SLO, a drift statistic or the GPU with the finding it shows (a `PanelKey`),
and `finalize_keyed` (builder.py) turns the marks into panel ids. An incident's Grafana
link opens its top finding's panel with `viewPanel=<id>`.

Pure: keys in, ids out. A finding no panel shows has no panel (None), and the link opens
the whole dashboard.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

DRIFT_KINDS = ("feature_drift", "prediction_drift")


class _Panel(Protocol):
    def id(self, id_val: int) -> Self: ...  # every SDK panel builder's


P = TypeVar("P", bound=_Panel)


@dataclass(frozen=True)
class PanelKey:
    """What finding a panel shows; "" matches any entity or statistic of that kind."""

    kind: str
    entity: str = ""
    statistic: str = ""


class PanelMarks:
    """The keys marked while a dashboard is built, in order. A marked panel carries the
    provisional id -(its index + 1) until `finalize_keyed` assigns the real one."""

    def __init__(self) -> None:
        self.keys: list[tuple[PanelKey, ...]] = []

    def mark(self, panel: P, *keys: PanelKey) -> P:
        self.keys.append(keys)
        return panel.id(-len(self.keys))


def drift_keys(statistic: str, configured: str) -> tuple[PanelKey, ...]:
    """A drift panel answers both drift kinds for its statistic; the configured statistic's
    panel also answers a drift finding whose statistic has no panel of its own."""
    keys = [PanelKey(kind, statistic=statistic) for kind in DRIFT_KINDS]
    if statistic == configured:
        keys += [PanelKey(kind) for kind in DRIFT_KINDS]
    return tuple(keys)


def finding_panel(panels: Mapping[PanelKey, int], kind: str, entity: str = "", statistic: str = "") -> int | None:
    """The id of the panel that shows a finding: the most specific key the builder marked
    (entity and statistic, entity, statistic, the kind alone), else None."""
    for key in (PanelKey(kind, entity, statistic), PanelKey(kind, entity), PanelKey(kind, statistic=statistic),
                PanelKey(kind)):
        if key in panels:
            return panels[key]
    return None
