"""Issue 11, row 8: readiness that tells the truth.

On the old code a store that refused every write (a nearly full disk) made every cycle
fail with no incident and no notification, while /readyz answered 200 ready. Now /readyz
is 503 naming the models and the error after `schedule.unready_after_failed_cycles`
failed cycles in a row, or when a model's last successful cycle is older than
`schedule.unready_after_intervals` intervals; two gauges export the same facts.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from monitor.api.app import create_app
from monitor.daemon import _safe_cycle
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.helpers_vigil import (
    MODEL,
    T0,
    incident_prometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)


def two_models(tmp_path: Any, **sections: Any) -> tuple[Any, Any]:
    cfg = make_config(tmp_path, models=[model_config("fraud"), model_config()], **sections)
    registry = serving_registry()
    registry.aliases[("fraud", "champion")] = "1"
    registry.add_version("fraud", "1", created_at=T0 - 30 * 86400)
    return cfg, registry


@contextmanager
def read_only(store: Store) -> Iterator[None]:
    """Every write of the store fails, as on a full disk; reads still answer."""
    def pragma(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only = ON")

    event.listen(store.engine, "connect", pragma)
    store.engine.dispose()  # pooled connections predate the pragma
    try:
        yield
    finally:
        event.remove(store.engine, "connect", pragma)
        store.engine.dispose()


def cycle_all(vigil: Vigil, t: float) -> None:
    vigil.clock.set(t)
    for m in vigil.config.models:
        _safe_cycle(vigil, m.name)  # the scheduler's job: a failure is logged and counted


def exposed(client: TestClient, name: str, model: str = MODEL) -> float | None:
    """The value /metrics shows for `name{model=...}` (None: not exposed)."""
    r = client.get("/metrics")
    assert r.status_code == 200
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model") == model:
                return float(sample.value)
    return None


def test_readyz_is_503_after_three_failed_cycles_naming_the_models_and_the_error(tmp_path):
    cfg, registry = two_models(tmp_path)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry, notifiers={})
    vigil.metrics.liveness.start(T0)  # what the daemon does as it starts
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    cycle_all(vigil, T0)
    assert client.get("/readyz").status_code == 200

    with read_only(vigil.store):
        for i in (1, 2):
            cycle_all(vigil, T0 + 60 * i)
        r = client.get("/readyz")
        assert r.status_code == 200, "two failures in a row are not yet a stuck Vigil"
        cycle_all(vigil, T0 + 180)
        r = client.get("/readyz")
        assert r.status_code == 503, r.json()
        body = r.json()
        assert body["status"] == "not ready" and body["store"] == "up"
        assert len(body["reasons"]) == 2
        for model, reason in zip(("fraud", MODEL), body["reasons"], strict=True):
            assert reason.startswith(f"{model}: 3 cycles in a row failed (limit 3)"), reason
            assert "readonly database" in reason, reason
        assert body["cycles"]["models"][MODEL]["consecutive_failures"] == 3
        assert exposed(client, "vigil_consecutive_failed_cycles") == 3
        assert exposed(client, "vigil_last_successful_cycle_timestamp_seconds") == T0

    cycle_all(vigil, T0 + 240)  # the store takes writes again
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready", r.json()
    assert exposed(client, "vigil_consecutive_failed_cycles") == 0
    assert exposed(client, "vigil_last_successful_cycle_timestamp_seconds") == T0 + 240


def test_readyz_is_503_when_a_models_last_successful_cycle_is_stale(tmp_path):
    cfg = make_config(tmp_path)  # interval 60 s: stale after 180 s
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={})
    vigil.metrics.liveness.start(T0 - 30)
    vigil.probe_sources()  # what the daemon does as it starts (monitor/probe.py)
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    vigil.clock.set(T0 - 10)
    assert client.get("/readyz").status_code == 200, "just started: no cycle could have run yet"
    vigil.run_cycle(MODEL, T0)
    vigil.clock.set(T0 + 170)
    assert client.get("/readyz").status_code == 200
    vigil.clock.set(T0 + 240)  # the scheduler stopped firing: nothing fails, nothing runs
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["reasons"] == [f"{MODEL}: last successful cycle 240 s ago (limit 180 s)"]
    assert exposed(client, "vigil_last_successful_cycle_timestamp_seconds") == T0


def test_a_model_that_never_cycled_is_stale_once_a_cycle_should_have_run(tmp_path):
    cfg = make_config(tmp_path)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={})
    vigil.metrics.liveness.start(T0)
    vigil.probe_sources()
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    vigil.clock.set(T0 + 181)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["reasons"] == [f"{MODEL}: no successful cycle in the 181 s since start (limit 180 s)"]


def test_an_api_only_process_judges_cycles_by_what_the_daemon_wrote_to_the_store(tmp_path):
    """`vigil serve` runs no cycles: it must not claim ready on liveness it cannot see."""
    cfg = make_config(tmp_path)
    api_vigil = make_vigil(cfg, notifiers={}, start=T0)
    api_vigil.metrics.liveness.start(T0 - 3600)  # the API process has been up for an hour
    api_vigil.probe_sources()  # its probe has pinged Prometheus and MLflow
    client = TestClient(create_app(api_vigil), raise_server_exceptions=False)
    r = client.get("/readyz")
    assert r.status_code == 503, "no daemon has ever cycled this model"
    assert r.json()["reasons"] == [f"{MODEL}: no successful cycle in the 3600 s since start (limit 180 s)"]

    daemon = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={})  # another process, same store
    daemon.run_cycle(MODEL, T0)
    api_vigil.clock.set(T0 + 60)
    assert client.get("/readyz").status_code == 200
    assert exposed(client, "vigil_last_successful_cycle_timestamp_seconds") == T0, "read from the store"
    api_vigil.clock.set(T0 + 400)  # the daemon died
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["reasons"] == [f"{MODEL}: last successful cycle 400 s ago (limit 180 s)"]


def test_the_limits_are_configurable(tmp_path):
    cfg = make_config(tmp_path, schedule={"interval": "60s", "unready_after_failed_cycles": 1,
                                          "unready_after_intervals": 10})
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={})
    vigil.metrics.liveness.start(T0)
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    vigil.run_cycle(MODEL, T0)
    vigil.clock.set(T0 + 590)
    assert client.get("/readyz").status_code == 200
    with read_only(vigil.store):
        _safe_cycle(vigil, MODEL)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["reasons"][0].startswith(f"{MODEL}: 1 cycles in a row failed")
