"""Deploys, incidents and rollbacks reach Grafana as annotations through the daemon's own
outbox, and a Grafana outage delays them without losing any."""
from __future__ import annotations

from monitor.grafana.annotations import GrafanaAnnotationNotifier
from tests.fakes.grafana_server import FakeGrafana
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

TOKEN = "test-token"


def test_deploy_incident_and_rollback_annotations_survive_an_outage(tmp_path):
    with FakeGrafana(tokens={TOKEN: "admin"}) as grafana:
        registry = serving_registry()
        prom = incident_prometheus(bad_from=T0 + 300, bad_until=T0 + 1200)
        vigil = make_vigil(make_config(tmp_path), prometheus=prom, registry=registry,
                           notifiers={"grafana": GrafanaAnnotationNotifier.from_url(grafana.url, TOKEN)})
        vigil.run_cycle(MODEL, T0)  # first sight of v1: recorded, not announced
        registry.aliases[(MODEL, "champion")] = "2"  # someone deploys v2

        grafana.down()  # Grafana is unreachable while things happen
        t = T0 + 60
        while t <= T0 + 3600:
            vigil.run_cycle(MODEL, t)
            vigil.deliver(t)
            t += 60
        assert grafana.annotations == {}
        assert vigil.store.outbox_counts().get("pending", 0) >= 2  # kept, not dropped

        grafana.up()
        vigil.deliver(t + 3600)  # after the backoff
        notes = list(grafana.annotations.values())

    by_kind = {k: [a for a in notes if k in a["tags"]] for k in ("deploy", "incident", "rollback")}
    (deploy,) = by_kind["deploy"]
    assert deploy["time"] == (T0 + 60) * 1000 and "v2" in deploy["text"]
    (incident,) = by_kind["incident"]
    assert incident["timeEnd"] > incident["time"]  # opened, then patched with its end on resolve
    assert MODEL in incident["tags"]
    (rollback,) = by_kind["rollback"]  # the KPI fell right after v2: Vigil moved champion back
    assert "v1" in rollback["text"] and rollback["time"] > deploy["time"]
    assert vigil.store.outbox_counts().get("pending", 0) == 0
