"""An ack that commits while a cycle of the same incident is in its transaction (PostgreSQL,
READ COMMITTED). The cycle had read the incident before the ack and queued its message after
the ack's, built from that stale row: PagerDuty was sent resolve, then a trigger under a new
key (`vigil-incident-1~2`), a fresh page nobody had acknowledged, while Vigil showed the
incident acknowledged by the on-call."""
from __future__ import annotations

import threading
from typing import Any

import pytest

import monitor.cycle.apply as apply_mod
from monitor.notifiers import build_receivers
from monitor.store.repository import Store
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_postgres"]
PD_KEY = "0123456789abcdef0123456789abcdef"


def test_an_ack_during_a_cycle_leaves_pagerduty_with_one_acknowledged_alert(tmp_path, monkeypatch, postgres_url):
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakePagerDuty() as pd:
        cfg = make_config(tmp_path, store={"url": fresh_schema_url(postgres_url)},
                          policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"},
                          receivers=[{"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY",
                                      "url": pd.url, "backoff_s": 0.0, "max_wait_s": 0.2}])
        vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers=build_receivers(cfg))

        def cycle(t: float) -> str:
            step = vigil.run_cycle(MODEL, t).step
            for _ in range(10):
                if vigil.deliver(t) == 0:
                    break
            return step

        assert [cycle(T0 + 60 * k) for k in range(2)] == ["open", "update"]  # warning, then critical
        for k in range(2, 6):
            cycle(T0 + 60 * k)
        (row,) = vigil.store.incidents()
        t1 = T0 + 360  # the critical's repeat is due: the cycle writes a message
        read, lock, acks, writing = Store.open_incident, apply_mod._locked_open_incident, [], []

        def locked_open_incident(*a: Any, **k: Any) -> Any:
            writing.append(1)  # the cycle's transaction that writes the incident and its messages
            return lock(*a, **k)

        def open_incident_then_ack(self: Store, s: Any, model: str) -> Any:
            got = read(self, s, model)
            if writing and got is not None and not acks:  # the on-call's ack lands right after that read
                acks.append(threading.Thread(target=vigil.operator.acknowledge, args=(row.id, "api:oncall", t1 - 1)))
                acks[0].start()
                acks[0].join(5)  # done at once, or waiting for the cycle's lock on the row
            return got

        monkeypatch.setattr(apply_mod, "_locked_open_incident", locked_open_incident)
        monkeypatch.setattr(Store, "open_incident", open_incident_then_ack)
        report = vigil.run_cycle(MODEL, t1)
        monkeypatch.setattr(Store, "open_incident", read)
        acks[0].join(40)
        assert not acks[0].is_alive()
        # planned as the critical's reminder; the ack it read under its lock took that back
        assert (report.step, vigil.store.incident(row.id).last_notified_at) == ("unchanged", T0 + 60)
        for k in range(8):
            cycle(t1 + 60 * k)

        assert vigil.store.incident(row.id).acknowledged_by == "api:oncall"
        sent = [(e["event_action"], e["dedup_key"]) for e in pd.events]
        assert [(a.dedup_key, a.status) for a in pd.alerts()] == [("vigil-incident-1", "acknowledged")], sent
