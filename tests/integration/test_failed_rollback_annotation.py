"""A failed automatic rollback reaches the notifiers that take rollbacks (Grafana's
annotations), not only the people: the timeline showed a deploy and an incident and nothing
of the rollback Vigil tried and gave up on (registry unreachable, half the layers moved),
so whoever read the graph thought nothing was attempted."""
from __future__ import annotations

from monitor.grafana.annotations import GrafanaAnnotationNotifier
from tests.fakes.grafana_server import FakeGrafana
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

TOKEN = "test-token"


def test_a_rollback_that_gave_up_is_annotated_as_failed(tmp_path):
    with FakeGrafana(tokens={TOKEN: "admin"}) as grafana:
        registry = serving_registry()
        cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                            "rollback": {"max_attempts": 2}})
        vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 - 300), registry=registry,
                           notifiers={"grafana": GrafanaAnnotationNotifier.from_url(grafana.url, TOKEN)})
        vigil.run_cycle(MODEL, T0 - 1200)
        registry.aliases[(MODEL, "champion")] = "2"
        registry.fail_set_alias = "MLflow answered 503"  # the rollback cannot move the alias
        for t in (T0 - 900, T0 - 600, T0 - 300, T0, T0 + 60, T0 + 120, T0 + 180):
            vigil.run_cycle(MODEL, t)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "failed" and "gave up after 2 attempts" in action.detail
        vigil.deliver(T0 + 3600)
        notes = list(grafana.annotations.values())

    rollbacks = [a for a in notes if "rollback" in a["tags"]]
    assert len(rollbacks) == 1, notes
    [note] = rollbacks
    assert "failed" in note["tags"] and "(failed)" in note["text"], note
    assert "v2 -> v1" in note["text"], note
