"""`vigil status`: each model's serving version, last cycle, open incident and blind
sources, read from the store a daemon writes (no daemon needed)."""
from __future__ import annotations

from monitor.cli import main
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config


def test_status_shows_serving_version_last_cycle_open_incident_and_blind_sources(tmp_path, capsys):
    cfg = make_config(tmp_path, models=[model_config(), model_config("fraud")])
    vigil = make_vigil(cfg, prometheus=incident_prometheus())
    for i in range(3):
        vigil.run_cycle(MODEL, T0 + 60 * i)
    vigil.prometheus.down = True  # fraud's cycle cannot read Prometheus: it is blind, not all clear
    vigil.run_cycle("fraud", T0 + 120)
    vigil.store.close()

    assert main(["status", "--store", cfg.store.url]) == 0
    out = capsys.readouterr().out
    fraud, rec = out.split("recommender\n")  # without a config: every model the store knows, by name
    assert "serving:       1" in rec and "last cycle:    2027-01-15T08:02:00Z" in rec
    assert "open incident: #1 critical since 2027-01-15T08:00:00Z: recommender:" in rec
    assert "blind:         nothing" in rec
    assert "serving:       unknown" in fraud  # the registry has no such model
    assert "open incident: #2 warning since 2027-01-15T08:02:00Z: fraud: no data (ctr)" in fraud
    assert "blind:         ctr: prometheus unavailable; p99_latency: prometheus unavailable" in fraud


def test_status_says_why_prometheus_rejected_a_query(tmp_path, capsys):
    """A KPI query Prometheus refuses (a typo: `summ(`) showed as `ctr: query rejected`: why
    was only in the incident's finding, a query away."""
    from monitor.sources.errors import QueryError

    cfg = make_config(tmp_path)
    prom = incident_prometheus()
    query_range = prom.query_range

    def rejecting(query, start, end, step=None, *, name=None):
        if name == "ctr":
            raise QueryError("prometheus", query, '1:1: parse error: unknown function with name "summ"')
        return query_range(query, start, end, step, name=name)

    prom.query_range = rejecting
    vigil = make_vigil(cfg, prometheus=prom)
    vigil.run_cycle(MODEL, T0)
    vigil.store.close()
    assert main(["status", "--store", cfg.store.url]) == 0
    out = capsys.readouterr().out
    assert 'blind:         ctr: query rejected: 1:1: parse error: unknown function with name "summ"' in out, out


def test_status_of_a_store_no_cycle_has_used(tmp_path, capsys):
    from monitor.store.repository import Store

    Store(f"sqlite:///{tmp_path / 'empty.db'}").close()  # made by a start; a missing file is refused
    assert main(["status", "--store", f"sqlite:///{tmp_path / 'empty.db'}"]) == 0
    assert "no model has run a cycle against this store yet" in capsys.readouterr().out



def test_a_model_pointed_at_another_alias_is_not_shown_serving_the_old_ones_version(tmp_path, capsys,
                                                                                     monkeypatch):
    """`registry_name: fraud` edited to `frauds` (a typo) or `alias:` changed: the store's
    version was read from the old alias, and the new one does not exist. `vigil status` and
    `GET /v1/models/{name}` still said it served v1 (the old alias's), for ever."""
    import yaml
    from fastapi.testclient import TestClient

    from monitor.api.app import create_app
    from monitor.store.repository import ModelStateRow

    models = [model_config(), model_config("fraud")]
    cfg = make_config(tmp_path, models=models, api={"token": "${VIGIL_STATUS_TEST_TOKEN:-}"})
    vigil = make_vigil(cfg, prometheus=incident_prometheus())
    with vigil.store.tx() as s:  # what a cycle of the old configuration stored
        s.add(ModelStateRow(model="fraud", alias_version="1", alias_of="fraud-old@champion", last_cycle_at=T0))
        s.add(ModelStateRow(model=MODEL, alias_version="3", alias_of=f"{MODEL}@champion", last_cycle_at=T0))
    assert vigil.config.model(MODEL).registry == MODEL and vigil.config.model(MODEL).alias == "champion"
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"store": {"url": cfg.store.url}, "models": models}))
    assert main(["status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fraud\n  serving:       unknown" in out and f"{MODEL}\n  serving:       3" in out

    monkeypatch.setenv("VIGIL_STATUS_TEST_TOKEN", "status-test-token")
    try:
        vigil.config = make_config(tmp_path, models=models, api={"token": "${VIGIL_STATUS_TEST_TOKEN:-}"})
        client = TestClient(create_app(vigil))
        auth = {"Authorization": "Bearer status-test-token"}
        assert client.get("/v1/models/fraud", headers=auth).json()["serving_version"] is None
        assert client.get(f"/v1/models/{MODEL}", headers=auth).json()["serving_version"] == "3"
    finally:
        vigil.store.close()
