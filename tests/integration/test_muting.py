"""Maintenance windows and inhibition in a running cycle, as on-call sees them: the
incident is open and recorded with what muted it, and no one is paged for it."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from alerts.outbox import DeliveryResult, DeliveryStatus, OutboxMessage
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config

pytestmark = pytest.mark.integration


class _Sink:
    name = "sink"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.DELIVERED)


def pages(vigil: Vigil) -> list[Any]:
    return [m for row in vigil.store.incidents() for m in vigil.store.outbox_for_prefix(f"incident:{row.id}")]


def window_around(t: float, minutes: int) -> dict[str, Any]:
    """A daily window [t, t + minutes) in UTC, as vigil.yaml writes it."""
    a = dt.datetime.fromtimestamp(t, dt.UTC)
    b = a + dt.timedelta(minutes=minutes)
    return {"times": [{"start_time": a.strftime("%H:%M"), "end_time": b.strftime("%H:%M")}]}


def test_a_model_in_its_maintenance_window_opens_its_incident_but_pages_after_the_window(tmp_path):
    cfg = make_config(tmp_path, time_intervals=[{"name": "db-maintenance", "time_intervals": [window_around(T0, 2)]}],
                      models=[model_config(mute_time_intervals=["db-maintenance"])])
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={"sink": _Sink()})
    assert vigil.run_cycle(MODEL, T0).step == "open"
    (row,) = vigil.store.incidents()
    assert "muted: maintenance window db-maintenance" in row.reasons
    assert pages(vigil) == []
    vigil.run_cycle(MODEL, T0 + 60)  # still inside the two minutes
    assert pages(vigil) == []
    vigil.run_cycle(MODEL, T0 + 180)  # the window is over: what is still wrong pages
    assert pages(vigil) and not any(r.startswith("muted:") for r in vigil.store.incidents()[0].reasons)


def test_an_unknown_maintenance_window_is_a_config_error(tmp_path):
    from monitor.config import ConfigError

    with pytest.raises(ConfigError, match="unknown time interval 'nightly'"):
        make_config(tmp_path, models=[model_config(mute_time_intervals=["nightly"])])


def test_prometheus_down_pages_once_for_the_outage_not_once_per_blind_model(tmp_path):
    cfg = make_config(tmp_path, models=[model_config(), model_config("ranker", owner_channel="#ranking")])
    prom = incident_prometheus()
    vigil = make_vigil(cfg, prometheus=prom, notifiers={"sink": _Sink()})
    prom.down = True
    for t in (T0, T0 + 60):
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, t)
    rows = vigil.store.incidents()
    assert len(rows) == 2, "blindness is never an all clear: both incidents are open"
    for row in rows:
        assert {f["kind"] for f in row.findings} == {"no_data"}
        assert any("source outage" in r for r in row.reasons), row.reasons
    assert pages(vigil) == []
    outage = [m for m in vigil.store.outbox_for_prefix("group:1") if m.kind == "group"]
    assert sorted(m.payload["channel"] for m in outage) == ["#ranking", "#recsys-alerts"]  # one page, each owner
    assert outage[0].payload["cause_kind"] == "source_unavailable" and outage[0].payload["cause"] == "prometheus"
    assert {m["model"] for m in outage[0].payload["models"]} == {"recommender", "ranker"}


def test_custom_inhibit_rules_replace_the_defaults(tmp_path):
    cfg = make_config(tmp_path, inhibit_rules=[], models=[model_config(), model_config("ranker")])
    prom = incident_prometheus()
    vigil = make_vigil(cfg, prometheus=prom, notifiers={"sink": _Sink()})
    prom.down = True
    for t in (T0, T0 + 60):
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, t)
    assert pages(vigil), "no rules: each no-data incident pages besides the outage's group"
