"""What may mute a model's messages this cycle, read just before planning: the live
silences, the model's active maintenance windows, and the other alerts firing now
(sources Vigil cannot reach, other models' open incidents, shared causes that page)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.grouping import decide_group
from alerts.inhibition import InhibitRule, default_rules
from alerts.labels import incident_labels, shared_cause_labels, source_down_labels
from alerts.lifecycle import is_muted
from alerts.matchers import Labels, LabelValue
from alerts.pipeline import Suppression
from alerts.policy import Severity, TierDecision
from alerts.silences import Silence, muting
from alerts.time_intervals import NamedIntervals, active_names
from monitor.config import ModelConfig, VigilConfig
from monitor.cycle.plan import open_state
from monitor.store import groups, silences
from monitor.store.repository import IncidentRow, IncidentStatus, Store


def inhibit_rules(config: VigilConfig) -> tuple[InhibitRule, ...]:
    if config.inhibit_rules is None:
        return default_rules(config.grouping.group_by)
    return tuple(r.rule() for r in config.inhibit_rules)


def group_labels(s: Session, config: VigilConfig, group: groups.AlertGroupRow,
                 members: list[groups.GroupMemberRow]) -> dict[str, LabelValue]:
    """A shared cause's labels, with the values of its other `group_by` labels (`team`, ...)
    read from an open member: what makes it this group, so an inhibit rule's `equal` on
    them reaches its members only, not another group's models on the same cause."""
    st = groups.state(group, members)
    labels = shared_cause_labels(group.cause_kind, group.cause, [m.model for m in st.open_members], st.severity())
    extra = [n for n in config.grouping.group_by if n not in labels]
    row = next((s.get(IncidentRow, m.incident_id) for m in members if m.open), None) if extra else None
    if row is not None:
        mine = row_labels(config, row)
        labels.update({n: mine.get(n, "") for n in extra})
    return labels


def row_labels(config: VigilConfig, row: IncidentRow) -> Labels:
    try:
        extra = dict(config.model(row.model).labels)
    except KeyError:  # a model no longer configured
        extra = {}
    return incident_labels(row.model, row.severity, row.findings or [], row.causes or [], extra)


@dataclass(frozen=True)
class OpenIncidents:
    """The open incidents as one cycle read them: each one's labels, model, and the columns
    muting reads (rows outside the session, without findings or causes)."""

    labels: dict[int, Labels]
    muting: dict[int, Any]  # id -> its (id, updated_at, *_MUTING) row as read

    def others(self, model: str) -> list[Labels]:
        return [v for i, v in self.labels.items() if self.muting[i].model != model]

    def row(self, incident_id: int) -> IncidentRow | None:
        """The incident as far as muting reads it (built when asked: most cycles ask for none)."""
        r = self.muting.get(incident_id) if incident_id in self.labels else None
        return None if r is None else IncidentRow(id=incident_id, **{c.key: getattr(r, c.key) for c in _MUTING})


# What muting reads of an incident (`_member_muted`, `open_state`): never its findings or
# causes, whose decoding for every group member in every model's cycle cost more than its drift.
_MUTING = (IncidentRow.model, IncidentRow.severity, IncidentRow.notified_digest, IncidentRow.last_notified_at,
           IncidentRow.silenced_until, IncidentRow.acknowledged_by)


class FiringLabels:
    """The labels of open incidents, each built once per version of its row.

    Every cycle reads the other models' open incidents; in a fleet of a thousand models
    with a hundred open, loading and labelling each of them in every cycle costs more
    than the cycle's own detection. So a cycle reads only (id, updated_at) of the open
    rows (and the columns muting reads) and loads the full row only for what changed since it was
    labelled (the apply stage sets `updated_at` with every change of findings or causes). Bounded:
    entries of incidents no longer open are dropped on each read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: dict[int, tuple[tuple[float, str], Labels]] = {}  # id -> (version, labels)
        self._config: VigilConfig | None = None

    def others(self, s: Session, config: VigilConfig, model: str) -> list[Labels]:
        return self.read(s, config).others(model)

    def read(self, s: Session, config: VigilConfig) -> OpenIncidents:
        rows = s.execute(select(IncidentRow.id, IncidentRow.updated_at, *_MUTING)
                         .where(IncidentRow.status == IncidentStatus.OPEN)).all()
        with self._lock:
            if self._config is not config:  # labels come from the config too: a reload relabels
                self._labels, self._config = {}, config
            known = dict(self._labels)
        version = {r.id: (r.updated_at, r.severity) for r in rows}
        stale = [i for i, at in version.items() if i not in known or known[i][0] != at]
        if stale:
            for r in s.query(IncidentRow).filter(IncidentRow.id.in_(stale)).all():
                known[r.id] = ((r.updated_at, r.severity), row_labels(config, r))
        with self._lock:
            if self._config is config:
                self._labels = {i: v for i, v in known.items() if i in version}
        return OpenIncidents({i: known[i][1] for i in version if i in known}, {r.id: r for r in rows})


def group_muted(s: Session, config: VigilConfig, group: groups.AlertGroupRow, members: list[groups.GroupMemberRow],
                t: float, live: list[Silence] | None = None, view: OpenIncidents | None = None) -> bool:
    """A shared cause is muted in its own maintenance window (`grouping.mute_time_intervals`),
    or when every open member is: a silence of one model, or one model's maintenance, must
    not mute the page of another that shares its cause (nor page the ones it mutes)."""
    sets = {x.name: x.named() for x in config.time_intervals}
    if active_names(sets, config.grouping.mute_time_intervals, t):
        return True
    open_models = {m.model for m in members if m.open}
    return bool(open_models) and muted_members(s, config, members, t, live, view) == open_models


def muted_members(s: Session, config: VigilConfig, members: list[groups.GroupMemberRow], t: float,
                  live: list[Silence] | None = None, view: OpenIncidents | None = None) -> set[str]:
    """The open members a silence or their model's maintenance window mutes: the shared
    cause does not page their channels or receivers for them. `view`: the open incidents
    as this transaction read them (`FiringLabels.read`), instead of loading each member."""
    sets = {x.name: x.named() for x in config.time_intervals}
    live = silences.live(s, t) if live is None else live
    out = set()
    for m in members:
        if not m.open:
            continue
        labels = view.labels.get(m.incident_id) if view is not None else None
        row = (view.row(m.incident_id) if view is not None else None) or s.get(IncidentRow, m.incident_id)
        if row is not None and _member_muted(config, row, live, sets, t, labels):
            out.add(m.model)
    return out


def group_silenced(s: Session, config: VigilConfig, group: groups.AlertGroupRow,
                   members: list[groups.GroupMemberRow], t: float, live: list[Silence] | None = None) -> bool:
    """A silence written for the shared cause itself (`alertname="SharedCause"`, its cause,
    its severity) holds its page back. It is matched once per open member, with that member
    as the group's only `model`: a silence naming one model never mutes the page that also
    speaks for another. A silenced group still holds its members' own pages (as a silenced
    alert still inhibits in Alertmanager): the silence hides the shared cause, not one page
    per model instead."""
    open_models = [m.model for m in members if m.open]
    if not open_models:
        return False
    labels = group_labels(s, config, group, members)
    live = silences.live(s, t) if live is None else live
    return all(muting(live, {**labels, "model": (m,)}, t) for m in open_models)


def _member_muted(config: VigilConfig, row: IncidentRow, live: list[Silence], sets: dict[str, NamedIntervals],
                  t: float, labels: Labels | None = None) -> bool:
    try:
        windows = config.model(row.model).mute_time_intervals
    except KeyError:  # a model no longer configured
        windows = []
    return (bool(active_names(sets, windows, t)) or bool(muting(live, labels or row_labels(config, row), t))
            or _incident_silenced(row, t))


def _incident_silenced(row: IncidentRow, t: float) -> bool:
    """The incident's own silence (POST /v1/incidents/{id}/silence) mutes it in its group too,
    by the rule that mutes its own page (an escalation past what was told gets through):
    else the group paged its channels and receivers for it as if nobody had silenced it."""
    return is_muted(open_state(row), TierDecision(Severity(row.severity), [], False), t)


def read_suppression(store: Store, config: VigilConfig, m: ModelConfig, t: float,
                     sources_down: list[str], labels: FiringLabels | None = None) -> Suppression:
    sets = {x.name: x.named() for x in config.time_intervals}
    firing: list[Labels] = [source_down_labels(name) for name in sources_down]
    settings = config.grouping.settings()
    with store.tx() as s:
        live = silences.live(s, t)
        view = (labels or FiringLabels()).read(s, config)
        firing += view.others(m.name)
        for g, members in groups.firing(s):
            st = groups.state(g, members)
            if decide_group(st, t, settings).firing and not group_muted(s, config, g, members, t, live, view):
                firing.append(group_labels(s, config, g, members))
    return Suppression(tuple(live), tuple(active_names(sets, m.mute_time_intervals, t)), tuple(firing))
