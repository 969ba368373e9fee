"""A person's rollback (`vigil rollback`, the API, another replica) made while the daemon's
cycle of the model is running: the cycle asked whether a rollback was in flight (no), then
read the registry after the alias had moved but before the rollback recorded its outcome.
It recorded the move as somebody's deploy (`observed`/`registry`: a suspect the next
incident could blame, and whose automatic rollback would undo the person's rollback) next
to the rollback's own event. A move read while an intent is open is now left to it."""
from __future__ import annotations

import pytest

from monitor.cycle.rollback_ask import RollbackAsk
from monitor.failpoints import ENV, FailPointError
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry


def test_an_alias_moved_by_a_rollback_in_flight_is_not_recorded_as_a_deploy(tmp_path, monkeypatch):
    cfg = make_config(tmp_path, models=[model_config(kpis=[], slos=[])])
    registry = serving_registry(version="2")
    vigil = make_vigil(cfg, registry=registry, notifiers={})
    m = cfg.model(MODEL)
    vigil.run_cycle(MODEL, T0)  # the daemon knows v2 serves
    assert vigil.rollbacks.in_flight(MODEL) is False  # what the next cycle asks first ...

    # ... then the person's rollback records its intent and moves the alias (and is still
    # to record its outcome) ...
    monkeypatch.setenv(ENV, "after_alias_move=raise")
    with pytest.raises(FailPointError):
        vigil.operator.rollback(RollbackAsk(m, "1", "bad deploy", "cli:operator", None, T0 + 30))
    monkeypatch.delenv(ENV)
    assert registry.aliases[(MODEL, "champion")] == "1"

    # ... and then the cycle reads the registry, having been told nothing is in flight.
    serving, events = vigil.deploys.poll(m, T0 + 40, hold=False)
    assert events == [] and serving == "2"

    vigil.rollbacks.reconcile(m, T0 + 50)  # the rollback records its outcome
    (event,) = [d for d in vigil.store.deploys(MODEL) if d.at > T0]  # one event, the rollback's own
    assert (event.version, event.previous_version, event.source) == ("1", "2", "rollback")
    serving, events = vigil.deploys.poll(m, T0 + 60)
    assert events == [] and serving == "1"
