"""Which version a rollback goes back to: versions that served cleanly (counted cycle by
cycle in the cycle's apply transaction, monitor/cycle/apply.py) and versions incidents
blame (read from incidents and earlier rollbacks).
The choice itself is pure: alerts/rollback.py `choose_target`."""
from __future__ import annotations

from sqlalchemy import or_, select

from alerts.lifecycle import IncidentStatus
from alerts.rollback import TargetFacts, blamed_versions
from monitor.config import RollbackPolicy
from monitor.store import intents
from monitor.store.repository import IncidentRow, Store


def target_facts(store: Store, model: str, rules: RollbackPolicy, now: float) -> TargetFacts:
    since = now - rules.blame_window
    with store.tx() as s:
        serving = store.model_state(s, model).alias_version
        rows = s.scalars(select(IncidentRow).where(
            IncidentRow.model == model,
            or_(IncidentRow.status == IncidentStatus.OPEN, IncidentRow.opened_at >= since)))
        blamed = blamed_versions([(r.id, list(r.causes or [])) for r in rows],
                                 intents.rolled_back_from(s, model, since))
        good = intents.known_good(s, model, rules.known_good_after_cycles)
    return TargetFacts(serving=serving, known_good=good, blamed=blamed,
                       deploy_previous=store.rollback_target(model))
