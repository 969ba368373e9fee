"""An incident opened under a silence pages no one (README). Someone who sees it in the API
acknowledges it ("I'm on it"): the ack is recorded, and PagerDuty and chat get nothing new."""
from __future__ import annotations

import pytest

from monitor.silence_ops import SilenceAsk, create
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

PD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.fixture
def pd(monkeypatch):
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakePagerDuty() as fake:
        yield fake


def drain(vigil, now):
    for _ in range(10):
        if vigil.deliver(now) == 0:
            break


def test_acknowledging_a_silenced_incident_does_not_page(tmp_path, pd):
    cfg = make_config(tmp_path, receivers=[{"name": "pagerduty", "kind": "pagerduty",
                                            "routing_key_env": "PD_ROUTING_KEY", "url": pd.url, "backoff_s": 0.0,
                                            "max_wait_s": 0.2}])
    vigil = make_vigil(cfg, prometheus=incident_prometheus())
    create(vigil.store, SilenceAsk(['model="recommender"'], "planned reindex OPS-7", "olga", duration="4h"),
           "olga", T0 - 10)
    vigil.run_cycle(MODEL, T0)
    drain(vigil, T0)
    vigil.run_cycle(MODEL, T0 + 60)
    drain(vigil, T0 + 60)
    assert pd.events == [], "silenced: nothing paged"
    (row,) = vigil.store.incidents()
    assert any(r.startswith("muted:") for r in row.reasons)
    vigil.operator.acknowledge(row.id, "alice", T0 + 90)
    drain(vigil, T0 + 90)
    print([(e["event_action"], e.get("payload", {}).get("severity")) for e in pd.events])
    print([(m.notifier, m.kind, m.key) for m in vigil.store.outbox_for_prefix("incident:1")])
    assert not any(e["event_action"] == "trigger" for e in pd.events), \
        "acknowledging a silenced incident opened a PagerDuty incident (pages the on-call)"
