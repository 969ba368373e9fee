"""Each model as the store last saw it (`vigil status`): the version its alias served,
its last cycle, its open incident and what its last cycle could not see."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from alerts.lifecycle import IncidentStatus
from monitor.store.model_now import ModelNowRow
from monitor.store.repository import IncidentRow, ModelStateRow, Store


@dataclass(frozen=True)
class ModelStatus:
    model: str
    serving: str | None
    last_cycle_at: float | None
    incident_id: int | None = None
    severity: str | None = None
    incident_title: str | None = None
    incident_opened_at: float | None = None
    blind: list[str] = field(default_factory=list)


def model_statuses(store: Store, models: Sequence[str] | None = None,
                   aliases: Mapping[str, str] | None = None) -> list[ModelStatus]:
    """`models` (the config's, in its order) or, without a config, every model the store knows.
    `aliases`: model -> the configured "<registered model>@<alias>"; a version stored from
    another one (the config's registry_name or alias changed since) serves nothing known."""
    with store.tx() as s:
        states = {r.model: r for r in s.scalars(select(ModelStateRow))}
        opened = {r.model: r for r in s.scalars(select(IncidentRow).where(IncidentRow.status == IncidentStatus.OPEN)
                                                .order_by(IncidentRow.id))}
        blinds = {r.model: r for r in s.scalars(select(ModelNowRow))}
    names = list(models) if models is not None else sorted(states)
    out = []
    for name in names:
        state, inc, bl = states.get(name), opened.get(name), blinds.get(name)
        out.append(ModelStatus(
            model=name, serving=state.alias_version if state and (
                aliases is None or state.alias_of in (None, aliases.get(name))) else None,
            last_cycle_at=state.last_cycle_at if state else None,
            incident_id=inc.id if inc else None, severity=inc.severity if inc else None,
            incident_title=inc.title if inc else None, incident_opened_at=inc.opened_at if inc else None,
            blind=list(bl.blind or []) if bl else []))
    return out
