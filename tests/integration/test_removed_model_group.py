"""A model removed from the configuration while its incident is open: a shared-cause group
it belongs to updates (and closes, with a resolve to PagerDuty, once no member is left
open), and two replicas on one PostgreSQL resolving at once send one resolve."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from monitor.cycle.removed import REASON, resolve_removed
from monitor.store import groups
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config
from tests.integration.test_shared_cause import config, cycles, prometheus, registry

pytestmark = pytest.mark.integration


def test_removed_members_update_then_close_their_group_and_pagerduty_hears_it(tmp_path, monkeypatch):
    from tests.fakes.pagerduty_server import FakePagerDuty

    monkeypatch.setenv("PD_ROUTING_KEY", "R" * 32)
    with FakePagerDuty() as pd:
        receiver = {"name": "pagerduty", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
                    "severities": ["warning", "critical"]}
        vigil = make_vigil(config(tmp_path, receivers=[receiver]), prometheus=prometheus(), registry=registry())
        cycles(vigil, [T0, T0 + 60, T0 + 120])
        (alert,) = pd.alerts()
        assert alert.dedup_key == "vigil-group-1" and alert.status == "triggered"

        gpu = {"selector": 'Hostname="gpu-node-1"'}
        kept = make_vigil(config(tmp_path, receivers=[receiver], models=[model_config("ranker", gpu=gpu)]),
                          prometheus=prometheus(), registry=registry(), start=T0 + 150)
        assert len(resolve_removed(kept).resolved) == 1  # recommender left the file; ranker is still open
        kept.deliver(T0 + 150)
        (alert,) = pd.alerts()
        assert alert.status == "triggered", "the group still pages for ranker"
        with kept.store.tx() as s:
            [(group, members)] = groups.firing(s)
            assert {m.model: m.open for m in members} == {MODEL: False, "ranker": True}

        none = make_vigil(config(tmp_path, receivers=[receiver], models=[model_config("search")]),
                          prometheus=prometheus(), registry=registry(), start=T0 + 180)
        assert len(resolve_removed(none).resolved) == 1
        for _ in range(5):
            if none.deliver(T0 + 180) == 0:
                break
        (alert,) = pd.alerts()
        assert alert.status == "resolved", "the group closed and PagerDuty was told"
        with none.store.tx() as s:
            assert groups.firing(s) == []
        assert {i.status for i in none.store.incidents()} == {"resolved"}
        assert all(i.reasons[0] == REASON for i in none.store.incidents())


def test_two_replicas_on_postgresql_resolve_a_removed_model_once(tmp_path, postgres_url, monkeypatch):
    monkeypatch.setenv("PD_ROUTING_KEY", "0" * 32)
    url = fresh_schema_url(postgres_url)
    pd = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY"}
    both = make_config(tmp_path, models=[model_config(), model_config("fraud")], store={"url": url}, receivers=[pd])
    first = make_vigil(both, prometheus=incident_prometheus(), notifiers=None)
    first.run_cycle(MODEL, T0)
    first.run_cycle(MODEL, T0 + 60)
    [row] = first.store.incidents(status="open")
    before = len(first.store.outbox_for_prefix(f"incident:{row.id}"))
    removed = make_config(tmp_path, models=[model_config("fraud")], store={"url": url}, receivers=[pd])
    replicas = [make_vigil(removed, notifiers=None, start=T0 + 120) for _ in range(2)]
    go, results = threading.Barrier(2), []

    def run(v: Any) -> None:
        go.wait()
        results.append(resolve_removed(v, me=None))

    threads = [threading.Thread(target=run, args=(v,)) for v in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(len(r.resolved) for r in results) == [0, 1]
    sent = [r for r in first.store.outbox_for_prefix(f"incident:{row.id}")[before:] if r.notifier == "pd"]
    assert [r.payload["status"] for r in sent] == ["resolved"]
    assert [e.action for e in first.store.audit_entries()].count("incident.resolve") == 1
    for v in [first, *replicas]:
        v.store.close()
