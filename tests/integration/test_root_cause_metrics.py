"""Root-cause metric series read by the daemon from a REAL Prometheus (backfilled with
promtool): the incident's root-cause list names the service whose metrics moved, alone
and in a sweep (the batched prefetch answers the query); with Prometheus dead the cycle
still diagnoses from logs and traces and says the metrics were lacking, and without them
it is a no-data incident, never an all clear."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from correlators.incident import CauseKind
from detectors.records import FindingKind
from monitor.config import parse_config
from monitor.replay.openmetrics import OpenMetricsWriter
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.fakes.loki_server import FakeLoki
from tests.fakes.tempo_server import FakeTempo
from tests.fixtures_prometheus import running_prometheus
from tests.integration.test_cycle_logs_traces import Registry, loki_streams, tempo_spans
from tests.synthetic_traces import synthetic_traces
from tests.unit.correlators.test_rca import _logs

pytestmark = pytest.mark.integration

T = 1_800_000_000.0  # cycle time: window [T - 30 min, T], normal period the hour before
STEP = 15.0
SERVICES = ("api", "cache", "preprocess")
ROOT_CAUSE = {
    "service_label": "app",  # the services are named by `app` in this Prometheus
    "metrics": [
        {"name": "availability", "query": "avg by (app) (service_availability)"},
        {"name": "http_errors", "query": 'sum by (app) (rate(http_requests_total{code=~"5.."}[5m]))'},
    ],
}


# A second scene in the same Prometheus: api's latency rises tenfold over the last ten
# minutes because preprocess, which it calls, saturates its CPU (a smaller anomaly).
LATENCY = {
    "service_label": "app",
    "metrics": [
        {"name": "latency_seconds", "query": "avg by (app) (request_latency_seconds)"},
        {"name": "cpu_saturation", "query": "avg by (app) (cpu_saturation_ratio)"},
    ],
}


def write_metrics(path: Path) -> None:
    """Two hours of every service at 15 s; preprocess fails over the last ten minutes:
    availability 0.999 -> 0.7 and its 5xx rate 0.1/s -> 30/s. Apart (LATENCY): api's
    latency 0.2 s -> 2 s and preprocess's CPU saturation 0.4 -> 0.9."""
    rng = np.random.default_rng(11)
    ts = np.arange(T - 7200, T + 1, STEP)
    broken = ts >= T - 600
    w = OpenMetricsWriter()
    for svc in SERVICES:
        avail = np.round(0.999 + rng.normal(0, 0.0003, len(ts)), 5)
        err_rate = np.full(len(ts), 0.1 + 0.02 * rng.random())
        if svc == "preprocess":
            avail[broken] = 0.7
            err_rate[broken] = 30.0
        w.add("service_availability", {"app": svc}, ts, avail)
        w.add("http_requests_total", {"app": svc, "code": "500"}, ts, np.cumsum(err_rate * STEP), type="counter")
        latency = np.round(0.2 * (1 + rng.normal(0, 0.002, len(ts))), 6)
        cpu = np.round(0.4 * (1 + rng.normal(0, 0.002, len(ts))), 6)
        if svc == "api":
            latency[broken] = 2.0
        if svc == "preprocess":
            cpu[broken] = 0.9
        w.add("request_latency_seconds", {"app": svc}, ts, latency)
        w.add("cpu_saturation_ratio", {"app": svc}, ts, cpu)
    w.write(path)


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    om = tmp_path_factory.mktemp("rc-om") / "metrics.om"
    write_metrics(om)
    with running_prometheus(om, tmp_path_factory.mktemp("rc-prometheus")) as url:
        yield url


def vigil(tmp_path: Path, sources: dict, **model: object) -> Vigil:
    cfg = parse_config({"sources": sources, "models": [{"name": "ranker", "owner_channel": "#ml", **model}]},
                       base_dir=str(tmp_path))
    return Vigil(cfg, store=Store(f"sqlite:///{tmp_path / 'v.db'}"), registry=Registry(), notifiers={})


def service_causes(report) -> list:
    assert report.incident is not None
    return [c for c in report.incident.causes if c.kind is CauseKind.SERVICE]


def test_the_service_whose_metrics_moved_is_the_root_cause(prometheus_url: str, tmp_path: Path) -> None:
    v = vigil(tmp_path, {"prometheus": {"url": prometheus_url}}, services=list(SERVICES), root_cause=ROOT_CAUSE)
    report = v.run_cycle("ranker", T)
    assert report.blind == []
    moved = {(f.service, f.evidence["metric"]) for f in report.findings if f.kind is FindingKind.METRIC_ANOMALY}
    assert moved == {("preprocess", "availability"), ("preprocess", "http_errors")}
    causes = service_causes(report)
    assert causes[0].entity == "preprocess"
    assert causes[0].score > 0 and all(c.score == 0 for c in causes[1:])
    assert causes[0].evidence["lacking"] == ["no logs in the window", "no traces in the window"]


def test_a_configured_call_graph_puts_the_callee_first_without_traces(prometheus_url: str, tmp_path: Path) -> None:
    """Metrics only: without a graph the loudest victim (api) ranks first; with
    `root_cause.call_graph` saying api calls preprocess, preprocess does and api is explained."""
    sources = {"prometheus": {"url": prometheus_url}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = service_causes(vigil(tmp_path / "a", sources, services=list(SERVICES), root_cause=LATENCY)
                           .run_cycle("ranker", T))
    graph = {**LATENCY, "call_graph": [{"caller": "api", "callee": "preprocess"},
                                       {"caller": "api", "callee": "cache"}]}
    given = service_causes(vigil(tmp_path / "b", sources, services=list(SERVICES), root_cause=graph)
                           .run_cycle("ranker", T))
    assert [c.entity for c in plain[:2]] == ["api", "preprocess"] and plain[0].evidence["explained_by"] is None
    assert [c.entity for c in given[:2]] == ["preprocess", "api"]
    assert given[1].evidence["explained_by"] == "preprocess"


def test_a_metrics_only_diagnosis_says_what_it_lacked_in_the_message_and_the_api(prometheus_url: str,
                                                                                  tmp_path: Path) -> None:
    """No Loki, no Tempo: the Slack message's causes and GET /v1/incidents/{id} say the
    logs and traces were missing, and the confidence is lowered for it."""
    import hashlib
    import json

    from fastapi.testclient import TestClient

    from alerts.sink import JsonlSink
    from alerts.slack_blocks import render_incident
    from monitor.api.app import create_app

    token = "rc-viewer-token-0b7e"
    cfg = parse_config({"sources": {"prometheus": {"url": prometheus_url}},
                        "grouping": {"enabled": False},  # one model: no wait for others sharing its cause
                        "api": {"tokens": [{"name": "reader", "role": "viewer",
                                            "token_sha256": hashlib.sha256(token.encode()).hexdigest()}]},
                        "models": [{"name": "ranker", "owner_channel": "#ml", "services": list(SERVICES),
                                    "root_cause": ROOT_CAUSE}]}, base_dir=str(tmp_path))
    sink = tmp_path / "sink.jsonl"
    v = Vigil(cfg, store=Store(f"sqlite:///{tmp_path / 'v.db'}"), registry=Registry(),
              notifiers={"sink": JsonlSink(sink, console=False)})
    report = v.run_cycle("ranker", T)
    assert report.incident_id is not None and v.deliver(now=T) >= 1
    [message] = [json.loads(x) for x in sink.read_text().splitlines() if '"incident_id"' in x]
    text = json.dumps(render_incident(message["payload"])[1])
    assert "1. preprocess" in text
    assert "Confidence lowered; what the diagnosis lacked: no logs in the window; no traces in the window." in text
    assert "missing: logs, traces" in text
    body = TestClient(create_app(v), headers={"Authorization": f"Bearer {token}"}).get(
        f"/v1/incidents/{report.incident_id}").json()
    [top] = [c for c in body["causes"] if c["kind"] == "service"][:1]
    assert top["entity"] == "preprocess"
    assert top["evidence"]["lacking"] == ["no logs in the window", "no traces in the window"]
    assert top["evidence"]["missing"] == ["logs", "traces"] and top["evidence"]["confidence_factor"] == 0.8


def test_a_sweep_reads_the_root_cause_metrics_in_its_batched_prefetch(prometheus_url: str, tmp_path: Path) -> None:
    v = vigil(tmp_path, {"prometheus": {"url": prometheus_url}}, services=list(SERVICES), root_cause=ROOT_CAUSE)
    pre = v.prefetch(["ranker"], T)
    w = v.window(v.config.models[0], T, None)
    for m in ROOT_CAUSE["metrics"]:
        got = pre.ranges[(m["query"], w.baseline_start, T)]
        assert isinstance(got, list) and {s.labels["app"] for s in got} == set(SERVICES)
    [report] = v.run_sweep(T, workers=1)
    assert service_causes(report)[0].entity == "preprocess"


def test_with_prometheus_dead_the_diagnosis_says_it_lacked_the_metrics(tmp_path: Path) -> None:
    """Loki and Tempo show preprocess's OOMs (the seeds' scene): the ranking still names it,
    and every cause says the metrics could not be read, at lowered confidence."""
    t = 1_800_000_600.0
    logs = _logs(t - 600, 300, False, 1) + _logs(t - 300, 300, True, 2)
    spans = synthetic_traces(60, t - 600) + synthetic_traces(60, t - 300, pre_ms=300, seed=3)
    dead = {"url": "http://127.0.0.1:9", "timeout_s": 0.2, "retries": 0}
    with FakeLoki(loki_streams(logs)) as loki, FakeTempo(tempo_spans(spans)) as tempo:
        v = Vigil(parse_config({
            "sources": {"prometheus": dead, "loki": {"url": loki.url}, "tempo": {"url": tempo.url}},
            "schedule": {"lookback": "5m"}, "root_cause": ROOT_CAUSE,
            "models": [{"name": "ranker", "services": ["api"], "owner_channel": "#ml"}]}, base_dir=str(tmp_path)),
            store=Store(f"sqlite:///{tmp_path / 'v.db'}"), registry=Registry(), notifiers={})
        report = v.run_cycle("ranker", t)
    assert v.sources["prometheus"].status == "down"
    causes = service_causes(report)
    assert causes[0].entity == "preprocess"
    lacking = causes[0].evidence["lacking"]
    assert any(x.startswith("no metrics: none of the root-cause metrics could be read") and "availability" in x
               and "http_errors (Prometheus unavailable)" in x for x in lacking), lacking
    assert causes[0].evidence["confidence_factor"] < 1
    assert "lacked" in causes[0].explanation
    assert any("availability" in b and "prometheus unavailable" in b for b in report.blind)


def test_with_prometheus_dead_and_nothing_else_it_is_no_data_never_all_clear(tmp_path: Path) -> None:
    v = vigil(tmp_path, {"prometheus": {"url": "http://127.0.0.1:9", "timeout_s": 0.2, "retries": 0}},
              services=list(SERVICES), root_cause=ROOT_CAUSE)
    report = v.run_cycle("ranker", T)
    assert report.incident is not None and report.blind
    gaps = [f for f in report.incident.findings if f.kind is FindingKind.NO_DATA]
    assert [f.entity for f in gaps] == ["root-cause metric availability"]
    assert gaps[0].evidence["source"] == "prometheus"
