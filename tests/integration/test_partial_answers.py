"""A Prometheus-compatible store that answers while one of its stores is down (Thanos and
Mimir: `warnings`; a VictoriaMetrics cluster: `isPartial`) can show half the successes missing
as a KPI drop. Vigil still alerts on what it read, says in the alert that it was read from a
partial answer, counts it, and never rolls back on its own on it; on-call still may."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from alerts.slack_text import finding_line
from detectors.records import Answer, Series
from monitor.api.app import create_app
from monitor.config import VigilConfig
from monitor.sources.prometheus import PrometheusSource
from monitor.store import intents
from monitor.vigil import Vigil
from tests.fakes.partial_prometheus import THANOS, PartialPrometheus
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    T0,
    StubPrometheus,
    incident_prometheus,
    make_config,
    make_vigil,
    metric_value,
    model_config,
    serving_registry,
    step_curve,
)

TOKEN = "partial-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, url: str) -> VigilConfig:
    monkeypatch.setenv("PARTIAL_TOKEN", TOKEN)
    return make_config(tmp_path, api={"token": "${PARTIAL_TOKEN}"}, models=[model_config()],
                       sources={"prometheus": {"url": url, "step": "60s", "timeout_s": 5, "retries": 0},
                                "mlflow": {"tracking_uri": "http://127.0.0.1:9"}})


def _regression_after_deploy(v: Vigil, reg: Any) -> None:
    """v1 serves clean for 30 cycles; v2 takes the alias at T0 - 1200, and CTR and p99 latency
    regress from T0 - 300 (critical, top cause the deploy: the guard allows it by T0 + 60)."""
    for i in range(31):
        v.run_cycle(MODEL, T0 - 12000 + 60 * i)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in range(int(T0 - 1200), int(T0 + 60) + 1, 60):
        v.run_cycle(MODEL, t)


@pytest.mark.parametrize("partial", [None, THANOS], ids=["whole", "thanos-warnings"])
def test_a_kpi_drop_read_from_a_partial_answer_is_alerted_but_not_rolled_back(tmp_path, monkeypatch, partial):
    with PartialPrometheus(incident_prometheus(bad_from=T0 - 300)) as prom:
        cfg = _config(tmp_path, monkeypatch, prom.url)
        reg = serving_registry(versions=("1", "2"), version="1")
        v = make_vigil(cfg, prometheus=PrometheusSource(cfg.sources.prometheus), registry=reg)
        prom.partial = partial  # a store down all along: every answer says so
        _regression_after_deploy(v, reg)
        v.deliver(T0 + 120)

        [incident] = v.store.incidents(model=MODEL)
        assert incident.severity == "critical"  # alerting goes on while a store is down
        ctr = next(f for f in incident.findings if f["entity"] == "ctr" and f["kind"] == "kpi_drop")
        actions = [(a.status, a.detail, a.reason) for a in v.store.actions(model=MODEL)]
        if partial is None:  # the same regression read whole: Vigil rolls v2 back on its own
            assert reg.moves == [(MODEL, "champion", "1")], actions
            assert "partial" not in ctr["evidence"] and metric_value(v, "vigil_partial_reads_total", model=MODEL) == 0
            return
        assert reg.moves == [], actions
        [(status, detail, reason)] = [a for a in actions if a[1] == "guard: partial_read"]
        assert status == "refused" and "read from a partial answer (ctr: " in reason
        assert "roll back" in reason  # people still may
        # The alert says which number came from a partial answer, and the backend's why.
        why = "store 10.0.3.7:10901"
        assert why in ctr["evidence"]["partial"]
        line = finding_line(ctr)
        assert "read from a partial answer: " in line and why in line
        sent = [json.loads(x) for x in (tmp_path / "notifications.jsonl").read_text().splitlines()]
        said = json.dumps([s["payload"] for s in sent])
        assert "guard: partial_read" in said and why in said
        # Counted in Vigil's own /metrics: two signals (ctr, p99_latency) a cycle.
        assert metric_value(v, "vigil_partial_reads_total", model=MODEL) >= 2 * 52

        # On-call's rollback is theirs to make.
        client = TestClient(create_app(v), raise_server_exceptions=False, headers=AUTH)
        r = client.post(f"/v1/models/{MODEL}/rollback", json={"reason": "checked it by hand"})
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
        assert reg.moves == [(MODEL, "champion", "1")]


def _open(v: Vigil) -> None:
    """The cycle at T0, read whole: it opens the incident the tests then read partially."""
    v.run_cycle(MODEL, T0)
    [opened] = v.store.incidents(model=MODEL)
    assert opened.status == "open"


def _cycles(v: Vigil, n: int) -> tuple[list[Any], Any]:
    """`n` cycles a minute apart after T0: their reports, and the incident after them."""
    reports = [v.run_cycle(MODEL, T0 + 60 * i) for i in range(1, n + 1)]
    [incident] = v.store.incidents(model=MODEL)
    return reports, incident


class _StorePartlyDown(StubPrometheus):
    """The stand-in's curves, each Series marked as read from a partial answer while `partial`."""

    partial = False

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        found = super().query_range(query, start, end, step, name=name)
        return [replace(s, partial=THANOS["warnings"][0]) for s in found] if self.partial else found


@pytest.mark.parametrize("partial", [False, True], ids=["whole", "partial"])
def test_an_incident_does_not_resolve_on_a_partial_read(tmp_path, partial):
    """The regression ends while a store is down: what reads as healthy may be the missing
    store's share, so it is no all clear (read whole, the same data resolves the incident)."""
    curves = incident_prometheus(bad_from=T0 - 600, bad_until=T0 + 60).curves
    prom = _StorePartlyDown(curves)
    v = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    _open(v)
    prom.partial = partial
    reports, incident = _cycles(v, 40)
    assert incident.status == ("open" if partial else "resolved")
    if partial:
        assert any("read from a partial answer: fetch series" in line for line in reports[-1].blind)


GPU_SEL = 'job="vllm"'
KV_QUERY = f"vllm:kv_cache_usage_perc{{{GPU_SEL}}} or vllm:gpu_cache_usage_perc{{{GPU_SEL}}}"


class _VllmStoreDown(PartialPrometheus):
    """Every answer whole, except the vLLM metrics' while `vllm_down`: their only store is
    down, so Thanos answers them with no series and a warning."""

    vllm_down = False

    def answer(self, path: str, q: dict[str, str]) -> dict[str, Any]:
        if self.vllm_down and q.get("query", "").startswith("vllm:"):
            self.answers += 1
            return {"status": "success", "data": {"resultType": "matrix", "result": []}, **THANOS}
        return super().answer(path, q)


@pytest.mark.parametrize("vllm_down", [False, True], ids=["calm-again", "store-down"])
def test_an_optional_signal_whose_store_is_down_is_no_all_clear(tmp_path, monkeypatch, vllm_down):
    """The KV cache (an optional vLLM signal) is saturated: a warning incident. Then the store
    holding the vLLM metrics goes down and Thanos answers their queries with no series and a
    warning. Read as "no series, optional", the saturation vanished and the incident resolved
    on a store outage, and the serving version counted clean cycles for a rollback target."""
    stub = incident_prometheus(bad_from=T0 + 3600)  # CTR and latency fine throughout
    stub.curves["DCGM_FI_DEV_GPU_UTIL{" + GPU_SEL + "}"] = lambda ts: np.full(len(ts), 40.0)
    stub.curves[KV_QUERY] = step_curve(0.5, 0.99, T0 - 900, T0 + 60)
    with _VllmStoreDown(stub) as prom:
        monkeypatch.setenv("PARTIAL_TOKEN", TOKEN)
        cfg = make_config(tmp_path, api={"token": "${PARTIAL_TOKEN}"},
                          models=[model_config(gpu={"selector": GPU_SEL})],
                          sources={"prometheus": {"url": prom.url, "step": "60s", "timeout_s": 5, "retries": 0},
                                   "mlflow": {"tracking_uri": "http://127.0.0.1:9"}})
        v = make_vigil(cfg, prometheus=PrometheusSource(cfg.sources.prometheus), notifiers={})
        _open(v)
        prom.vllm_down = vllm_down
        reports, incident = _cycles(v, 10)
    with v.store.tx() as s:
        good = intents.known_good(s, MODEL, 1)
    if not vllm_down:  # the saturation ended, read whole: an all clear
        assert incident.status == "resolved" and good == ["1"]
        return
    assert incident.status == "open" and good == []
    said = [line for line in reports[-1].blind if line.startswith("gpu kv_cache_ratio")]
    assert said and "read from a partial answer: fetch series" in said[0], reports[-1].blind


VOLUME_QUERY = 'sum(rate(impressions_total{model="recommender"}[5m]))'


class _VolumeStoreDown(StubPrometheus):
    """The impressions behind CTR (its `volume_query`, which scales the anomaly band) come
    from an answer a store missed while `partial` ("empty": the store held all of them, so
    the answer has no series, only its warning); CTR and latency are read whole."""

    partial: bool | str = False

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        found = super().query_range(query, start, end, step, name=name)
        if self.partial == "empty" and query == VOLUME_QUERY:
            return Answer.of(partial=THANOS["warnings"][0])
        if self.partial and query == VOLUME_QUERY:
            return [replace(s, values=s.values / 2, partial=THANOS["warnings"][0]) for s in found]
        return found


@pytest.mark.parametrize("partial", [False, True, "empty"], ids=["whole", "partial", "empty"])
def test_an_incident_does_not_resolve_while_the_volume_behind_a_kpi_is_read_partially(tmp_path, partial):
    """Half the impressions missing widens the CTR's anomaly band about 1.4x: a drop it
    would have flagged reads as normal. The volume was not marked, so the incident resolved
    on it, and nothing said the band was scaled by a partial answer. All of them missing
    (no series, the warning only) left the band unscaled, unmarked, and resolved too."""
    curves = incident_prometheus(bad_from=T0 - 600, bad_until=T0 + 60).curves
    prom = _VolumeStoreDown({**curves, VOLUME_QUERY: lambda ts: np.full(len(ts), 100.0)})
    kpi = {"name": "ctr", "query": CTR_QUERY, "volume_query": VOLUME_QUERY}
    v = make_vigil(make_config(tmp_path, models=[model_config(kpis=[kpi])]), prometheus=prom, notifiers={})
    _open(v)
    prom.partial = partial
    reports, incident = _cycles(v, 10)
    assert incident.status == ("open" if partial else "resolved")
    if partial:
        assert any(line.startswith("ctr volume: read from a partial answer: fetch series")
                   for line in reports[-1].blind), reports[-1].blind


class _CtrStoreDown(StubPrometheus):
    """From the deploy on, a store holding part of CTR is down: `cut` says what its answer
    still holds, marked partial when `partial` (read whole, that is what CTR really was)."""

    partial = True

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        found = super().query_range(query, start, end, step, name=name)
        if query != CTR_QUERY or end < T0 - 1200:
            return found
        return [self.cut(s, THANOS["warnings"][0] if self.partial else "") for s in found]

    def cut(self, s: Series, why: str) -> Series:
        raise NotImplementedError


def _regressed_behind(store_down: type[_CtrStoreDown], tmp_path: Any, partial: bool) -> tuple[Vigil, Any]:
    """`_regression_after_deploy` read through `store_down` (its answers marked partial, or
    whole), with p99 alone enough of a cause to roll back on; the Vigil and its registry."""
    prom = store_down(incident_prometheus(bad_from=T0 - 300).curves)
    prom.partial = partial
    reg = serving_registry(versions=("1", "2"), version="1")
    policy = {"slo_consecutive_cycles": 2, "rollback": {"min_confidence": 0.5}}
    v = make_vigil(make_config(tmp_path, policy=policy), prometheus=prom, registry=reg, notifiers={})
    _regression_after_deploy(v, reg)
    return v, reg


class _TrafficStoreDown(_CtrStoreDown):
    """The store holding the model's traffic: what CTR's answer still holds (a region that
    serves nothing) is 0/0 throughout the window (read whole: no request served)."""

    def cut(self, s: Series, why: str) -> Series:
        return replace(s, values=np.where(s.timestamps >= T0 - 3600, np.nan, s.values), partial=why)


@pytest.mark.parametrize("partial", [False, True], ids=["idle", "partial"])
def test_a_kpi_read_0_over_0_from_a_partial_answer_is_nothing_to_judge_not_idle(tmp_path, partial):
    """CTR read 0/0 for the whole window from an answer a store missed was taken for "no
    traffic", and its partial mark was dropped: the cycle said the model served no request, and
    Vigil rolled back on its own while a store was down (the guard `partial_read` never saw it)."""
    v, reg = _regressed_behind(_TrafficStoreDown, tmp_path, partial)
    blind = v.run_cycle(MODEL, T0 + 120).blind
    ctr = [line for line in blind if line.startswith("ctr:")]
    if not partial:  # the model really served nothing there: the p99 regression rolls v2 back
        assert reg.moves == [(MODEL, "champion", "1")] and ctr == ["ctr: no traffic: every value of the window "
                                                                    "is 0/0 (NaN), not judged"]
        return
    assert ctr == [f"ctr: nothing to judge, read from a partial answer: {THANOS['warnings'][0]}"], blind
    assert reg.moves == [], [(a.status, a.detail, a.reason) for a in v.store.actions(model=MODEL)]
    assert [a.detail for a in v.store.actions(model=MODEL)] == ["guard: partial_read"]
    assert metric_value(v, "vigil_partial_reads_total", model=MODEL) >= 20


class _RecentStoreDown(_CtrStoreDown):
    """The store holding CTR's last half hour (a Thanos sidecar; older blocks are in the store
    gateway): its points stop 25 minutes back (read whole: the series really stopped)."""

    def cut(self, s: Series, why: str) -> Series:
        kept = s.timestamps < T0 - 1500
        return Series(s.name, s.labels, s.timestamps[kept], s.values[kept], why)


@pytest.mark.parametrize("partial", [False, True], ids=["stopped", "partial"])
def test_a_series_that_stops_in_a_partial_answer_says_why_and_is_not_rolled_back_on(tmp_path, partial):
    """A series whose recent points are on the store that did not answer read as "the series
    stopped (its target down, or renamed)", and the mark was dropped: the page blamed the
    target, and Vigil rolled back on its own while a store was down."""
    v, reg = _regressed_behind(_RecentStoreDown, tmp_path, partial)
    report = v.run_cycle(MODEL, T0 + 120)
    [stopped] = [f for f in report.findings if f.entity == "ctr" and f.kind == "no_data"]
    assert "the series stopped" in stopped.message
    if not partial:  # the target really stopped reporting: the p99 regression rolls v2 back
        assert reg.moves == [(MODEL, "champion", "1")] and "partial" not in stopped.message
        return
    assert f"read from a partial answer: {THANOS['warnings'][0]}" in stopped.message
    assert f"ctr: nothing to judge, read from a partial answer: {THANOS['warnings'][0]}" in report.blind
    assert reg.moves == [], [(a.status, a.detail, a.reason) for a in v.store.actions(model=MODEL)]
    assert [a.detail for a in v.store.actions(model=MODEL)] == ["guard: partial_read"]
