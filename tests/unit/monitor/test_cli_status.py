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


def test_status_of_a_store_no_cycle_has_used(tmp_path, capsys):
    from monitor.store.repository import Store

    Store(f"sqlite:///{tmp_path / 'empty.db'}").close()  # made by a start; a missing file is refused
    assert main(["status", "--store", f"sqlite:///{tmp_path / 'empty.db'}"]) == 0
    assert "no model has run a cycle against this store yet" in capsys.readouterr().out
