"""`policy.repeat_interval` counts from the last message that told someone (README, "State
changes that notify"): an edit of the incident's message that tells no one new (a rollback
shown on it, an acknowledgement) must not restart that clock."""
from __future__ import annotations

import pytest

from monitor.cycle.rollback_ask import RollbackAsk
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

pytestmark = pytest.mark.integration


def test_a_rollback_shown_on_the_message_does_not_delay_the_critical_reminder(tmp_path):
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "repeat_interval": "5m", "rollback": {"enabled": False}})
    registry = serving_registry(versions=("1", "2"))
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry)
    m = cfg.model(MODEL)
    vigil.deploys.poll(m, T0 - 7200)  # v1 serves
    registry.aliases[(MODEL, "champion")] = "2"
    vigil.deploys.poll(m, T0 - 3600)  # v2 replaced it
    assert vigil.run_cycle(MODEL, T0).step == "open"  # critical (the p99 breach, since v2): told at T0
    (row,) = vigil.store.incidents()
    assert row.severity == "critical"
    incident_id = row.id
    steps = {}
    for t in (T0 + 60, T0 + 120, T0 + 180):
        steps[t - T0] = vigil.run_cycle(MODEL, t).step
    done = vigil.operator.rollback(RollbackAsk(m, "1", "p99 since v2", "api:alice", incident_id, T0 + 200))
    assert done.status == "done", done
    for t in (T0 + 240, T0 + 300, T0 + 360):
        steps[t - T0] = vigil.run_cycle(MODEL, t).step
    assert "repeat" in (steps[300], steps[360]), \
        f"the rollback's edit of the message restarted the repeat clock (told at +0, interval 5 min): {steps}"
    told = vigil.store.incident(incident_id).last_notified_at
    vigil.operator.acknowledge(incident_id, "api:bob", T0 + 400)  # an edit too: who took it
    assert vigil.store.incident(incident_id).last_notified_at == told
