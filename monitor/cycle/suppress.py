"""What may mute a model's messages this cycle, read just before planning: the live
silences, the model's active maintenance windows, and the other alerts firing now
(sources Vigil cannot reach, other models' open incidents, shared causes that page)."""
from __future__ import annotations

from alerts.grouping import decide_group
from alerts.inhibition import DEFAULT_RULES, InhibitRule
from alerts.labels import incident_labels, shared_cause_labels, source_down_labels
from alerts.matchers import Labels
from alerts.pipeline import Suppression
from alerts.time_intervals import active_names
from monitor.config import ModelConfig, VigilConfig
from monitor.store import groups, silences
from monitor.store.repository import IncidentRow, IncidentStatus, Store


def inhibit_rules(config: VigilConfig) -> tuple[InhibitRule, ...]:
    if config.inhibit_rules is None:
        return DEFAULT_RULES
    return tuple(r.rule() for r in config.inhibit_rules)


def row_labels(config: VigilConfig, row: IncidentRow) -> Labels:
    known = {m.name: m for m in config.models}
    extra = dict(known[row.model].labels) if row.model in known else {}
    return incident_labels(row.model, row.severity, row.findings or [], row.causes or [], extra)


def read_suppression(store: Store, config: VigilConfig, m: ModelConfig, t: float,
                     sources_down: list[str]) -> Suppression:
    sets = {x.name: x.named() for x in config.time_intervals}
    firing: list[Labels] = [source_down_labels(name) for name in sources_down]
    settings = config.grouping.settings()
    with store.tx() as s:
        live = silences.live(s, t)
        others = s.query(IncidentRow).filter(IncidentRow.status == IncidentStatus.OPEN,
                                             IncidentRow.model != m.name).all()
        firing += [row_labels(config, r) for r in others]
        for g, members in groups.firing(s):
            st = groups.state(g, members)
            if decide_group(st, t, settings).firing:
                firing.append(shared_cause_labels(g.cause_kind, g.cause, [x.model for x in st.open_members],
                                                  st.severity()))
    return Suppression(tuple(live), tuple(active_names(sets, m.mute_time_intervals, t)), tuple(firing))
