"""The seeds' central scene through the daemon's own cycle: p99 of the inference service
jumps, Loki shows OOM errors in preprocess, Tempo shows preprocess's self time 50 -> 300 ms.
The incident must name preprocess as the root cause, with that evidence."""
from __future__ import annotations

import numpy as np

from correlators.incident import CauseKind
from detectors.records import FindingKind, Series
from monitor.config import parse_config
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.fakes.loki_server import FakeLoki, Stream
from tests.fakes.tempo_server import FakeSpan, FakeTempo
from tests.synthetic_traces import synthetic_traces as _traces
from tests.unit.correlators.test_rca import _logs

T = 1_800_000_600.0  # cycle time; current window [T-300, T], baseline [T-600, T-300]


class SloBreach:
    """Prometheus stand-in: api's p99 latency is 0.45 s (SLO 0.3 s) for the whole window."""

    def query_range(self, query, start, end, step=None, *, name=None):
        ts = np.arange(start, end + 1, 60.0)
        return [Series(name or query, {}, ts, np.full(len(ts), 0.45))]


class Registry:
    def alias_version(self, name, alias):
        return "1"

    def get_version(self, name, version):
        raise KeyError(version)

    get_version_cached = get_version


def loki_streams(records) -> list[Stream]:
    streams: dict[str, Stream] = {}
    for r in records:
        streams.setdefault(r.service, Stream({"service": r.service})).entries.append((int(r.ts * 1e9), r.line, {}))
    return list(streams.values())


def tempo_spans(spans) -> list[FakeSpan]:
    return [FakeSpan(s.trace_id, s.span_id, s.parent_id, s.service, s.operation, s.start_ns, s.end_ns, s.error)
            for s in spans]


def ranker_config(sources: dict, *, base_dir: str, services: list[str] | None = None,
                  owner_channel: str | None = "#ml"):
    """One model, `ranker`, of the given services (`api` unless said), whose p99 SLO is breached."""
    model = {"name": "ranker", "services": services or ["api"],
             "slos": [{"name": "p99_latency", "query": "p99", "threshold": 0.3, "unit": "s"}]}
    if owner_channel:
        model["owner_channel"] = owner_channel
    return parse_config({"sources": sources, "schedule": {"lookback": "5m", "interval": "1m"}, "models": [model]},
                        base_dir=base_dir)


def test_cycle_ranks_preprocess_first_with_log_and_trace_evidence(tmp_path):
    logs = _logs(T - 600, 300, False, 1) + _logs(T - 300, 300, True, 2)
    spans = _traces(60, T - 600) + _traces(60, T - 300, pre_ms=300, seed=3)
    with FakeLoki(loki_streams(logs)) as loki, FakeTempo(tempo_spans(spans)) as tempo:
        cfg = ranker_config({"loki": {"url": loki.url}, "tempo": {"url": tempo.url}}, base_dir=str(tmp_path))
        vigil = Vigil(cfg, store=Store(f"sqlite:///{tmp_path / 'v.db'}"), prometheus=SloBreach(),
                      registry=Registry(), notifiers={})
        report = vigil.run_cycle("ranker", T)

    kinds = {f.kind for f in report.findings}
    assert {FindingKind.SLO_BREACH, FindingKind.LOG_ANOMALY, FindingKind.TRACE_ANOMALY} <= kinds
    services = [c for c in report.incident.causes if c.kind == CauseKind.SERVICE]
    assert services[0].entity == "preprocess"
    assert services[0].evidence["modalities"]["logs"] > 0 and services[0].evidence["modalities"]["traces"] > 0
    assert [c.entity for c in services].index("api") > 0  # the caller waiting on it is not blamed first
    oom = [f for f in report.findings if f.kind == FindingKind.LOG_ANOMALY and f.service == "preprocess"]
    assert any("OutOfMemoryError" in str(f.evidence) or "OutOfMemoryError" in f.message for f in oom)
    assert vigil.sources["loki"].status == "up" and vigil.sources["tempo"].status == "up"


def test_cycle_survives_dead_loki_and_tempo(tmp_path):
    cfg = parse_config({
        "sources": {"loki": {"url": "http://127.0.0.1:9", "timeout_s": 0.2},
                    "tempo": {"url": "http://127.0.0.1:9", "timeout_s": 0.2}},
        "schedule": {"lookback": "5m"},
        "models": [{"name": "ranker", "services": ["api"],
                    "slos": [{"name": "p99_latency", "query": "p99", "threshold": 0.3}]}],
    }, base_dir=str(tmp_path))
    vigil = Vigil(cfg, store=Store(f"sqlite:///{tmp_path / 'v.db'}"), prometheus=SloBreach(), registry=Registry(),
                  notifiers={})
    report = vigil.run_cycle("ranker", T)
    assert any(f.kind == FindingKind.SLO_BREACH for f in report.findings)
    assert vigil.sources["loki"].status == "down" and vigil.sources["tempo"].status == "down"
    assert any("loki" in b for b in report.blind) and any("tempo" in b for b in report.blind)


def test_log_and_trace_baselines_are_stored_and_frozen_while_the_incident_is_open(tmp_path):
    """The baselines are fitted on the healthy window before onset and stored; while the
    incident stays open (and across a restart) they are not refitted on the failing
    windows, so the OOMs still count as new five minutes later."""
    logs = (_logs(T - 600, 300, False, 1) + _logs(T - 300, 300, True, 2) + _logs(T, 300, True, 4))
    spans = _traces(60, T - 600) + _traces(60, T - 300, pre_ms=300, seed=3) + _traces(60, T, pre_ms=300, seed=5)
    store_url = f"sqlite:///{tmp_path / 'v.db'}"
    with FakeLoki(loki_streams(logs)) as loki, FakeTempo(tempo_spans(spans)) as tempo:
        cfg = ranker_config({"loki": {"url": loki.url}, "tempo": {"url": tempo.url}}, base_dir=str(tmp_path))

        def state() -> dict:
            store = Store(store_url)
            with store.tx() as s:
                return store.detector_state(s, "ranker")

        first = Vigil(cfg, store=Store(store_url), prometheus=SloBreach(), registry=Registry(), notifiers={})
        assert first.run_cycle("ranker", T).incident_id is not None
        stored = state()
        assert stored["@logs"]["fitted_on"] == stored["@traces"]["fitted_on"] == [T - 600, T - 300]
        restarted = Vigil(cfg, store=Store(store_url), prometheus=SloBreach(), registry=Registry(), notifiers={})
        report = restarted.run_cycle("ranker", T + 300)

    assert state()["@logs"] == stored["@logs"] and state()["@traces"] == stored["@traces"]
    oom = [f for f in report.findings if f.kind == FindingKind.LOG_ANOMALY and f.service == "preprocess"]
    assert oom, "the OOMs are still new against the pre-onset baseline"
    services = [c for c in report.incident.causes if c.kind == CauseKind.SERVICE]
    assert services[0].entity == "preprocess"


class _FlakyTempo(FakeTempo):
    """Tempo that answers 503 for any search starting before `fail_before` (None: never)."""

    fail_before: float | None = None

    def _search(self, q):
        if self.fail_before is not None and int(q.get("start", "0")) < self.fail_before:
            return self.text(503, "too many outstanding requests")
        return super()._search(q)


class Healthy(SloBreach):
    def query_range(self, query, start, end, step=None, *, name=None):
        ts = np.arange(start, end + 1, 60.0)
        return [Series(name or query, {}, ts, np.full(len(ts), 0.2))]


def test_a_failed_trace_baseline_refresh_keeps_the_stored_baseline_and_says_so(tmp_path):
    """Healthy cycles refit the baselines on the window before. When Tempo answers the
    window but fails that refresh, the stored baseline stays (not replaced by an empty
    one) and the window is scored against it: Tempo is up, with the failure in its detail."""
    spans = _traces(60, T - 600) + _traces(60, T - 300, seed=3) + _traces(60, T, seed=5)
    store_url = f"sqlite:///{tmp_path / 'v.db'}"
    with _FlakyTempo(tempo_spans(spans)) as tempo:
        cfg = ranker_config({"tempo": {"url": tempo.url}}, owner_channel=None, base_dir=str(tmp_path))
        vigil = Vigil(cfg, store=Store(store_url), prometheus=Healthy(), registry=Registry(), notifiers={})
        vigil.run_cycle("ranker", T)
        store = Store(store_url)
        with store.tx() as s:
            before = store.detector_state(s, "ranker")["@traces"]
        assert before["fitted_on"] == [T - 600, T - 300]
        tempo.fail_before = T  # the next cycle's window [T, T+300] answers, its baseline [T-300, T] fails
        report = vigil.run_cycle("ranker", T + 300)
        with store.tx() as s:
            after = store.detector_state(s, "ranker")["@traces"]

    assert after == before
    assert vigil.sources["tempo"].status == "up" and "baseline refresh failed" in vigil.sources["tempo"].detail
    assert not any("tempo" in b for b in report.blind)


def test_loki_streams_labelled_service_name_are_read_with_sources_loki_service_label(tmp_path):
    """Loki 3 and OpenTelemetry pipelines label streams `service_name`: with the selector's
    label fixed to `service` every query matched nothing, and the logs were silently empty."""
    logs = _logs(T - 600, 300, False, 1) + _logs(T - 300, 300, True, 2)
    streams = loki_streams(logs)
    for s in streams:
        s.labels = {"service_name": s.labels["service"]}
    with FakeLoki(streams) as loki:
        cfg = ranker_config({"loki": {"url": loki.url, "service_label": "service_name"}},
                            services=["api", "preprocess"], base_dir=str(tmp_path))
        vigil = Vigil(cfg, store=Store(f"sqlite:///{tmp_path / 'v.db'}"), prometheus=SloBreach(),
                      registry=Registry(), notifiers={})
        report = vigil.run_cycle("ranker", T)
    assert {'{service_name="api"}', '{service_name="preprocess"}'} <= {r["params"]["query"] for r in loki.requests}
    oom = [f for f in report.findings if f.kind == FindingKind.LOG_ANOMALY and f.service == "preprocess"]
    assert oom, report.findings


def test_traces_cut_at_the_search_limit_are_said_to_be_a_sample(tmp_path):
    """60 traces a window and `search_limit` 20: the trace evidence is a third of what matched,
    and the diagnosis says so on its causes (what it lacked) rather than present it as whole."""
    logs = _logs(T - 600, 300, False, 1) + _logs(T - 300, 300, True, 2)
    spans = _traces(60, T - 600) + _traces(60, T - 300, pre_ms=300, seed=3)
    lacked = {}
    for limit in (20, 1000):
        with FakeLoki(loki_streams(logs)) as loki, FakeTempo(tempo_spans(spans)) as tempo:
            cfg = ranker_config({"loki": {"url": loki.url}, "tempo": {"url": tempo.url, "search_limit": limit}},
                                base_dir=str(tmp_path / str(limit)))
            vigil = Vigil(cfg, store=Store(f"sqlite:///{tmp_path / f'v{limit}.db'}"), prometheus=SloBreach(),
                          registry=Registry(), notifiers={})
            report = vigil.run_cycle("ranker", T)
        [top] = [c for c in report.incident.causes if c.kind == CauseKind.SERVICE][:1]
        lacked[limit] = [line for line in top.evidence["lacking"] if line.startswith("traces a sample")]
        assert top.entity == "preprocess"  # still found: the sample is enough to rank
    [line] = lacked[20]
    assert "search_limit 20" in line and "api: the search limit of 20 traces was reached" in line
    assert lacked[1000] == []


def test_a_malformed_log_entry_is_named_and_the_traces_still_judged(tmp_path):
    # One entry whose line is null (a proxy re-encoding Loki's answer): it was an internal
    # error of the whole logs-and-traces family, so preprocess's slow spans went unseen too.
    spans = _traces(60, T - 600) + _traces(60, T - 300, pre_ms=300, seed=3)
    broken = Stream({"service": "preprocess"}, [(int((T - 100) * 1e9), None, {})])  # type: ignore[list-item]
    with FakeLoki([broken]) as loki, FakeTempo(tempo_spans(spans)) as tempo:
        cfg = ranker_config({"loki": {"url": loki.url}, "tempo": {"url": tempo.url}}, base_dir=str(tmp_path))
        vigil = Vigil(cfg, store=Store(f"sqlite:///{tmp_path / 'v.db'}"), prometheus=SloBreach(),
                      registry=Registry(), notifiers={})
        report = vigil.run_cycle("ranker", T)

    assert any(f.kind == FindingKind.TRACE_ANOMALY and f.service == "preprocess" for f in report.findings), \
        [f.message for f in report.findings]
    said = " ".join([*report.blind, *(f.message for f in report.findings)])
    assert "data.result[0].values[0]" in said and "internal error" not in said, said


class _TraceWithoutId(FakeTempo):
    """Tempo's search answers a trace summary without its traceID (a proxy re-encoding it)."""

    def route(self, path, q, headers):
        if path == "/api/search":
            return self.json({"traces": [{"rootServiceName": "api", "durationMs": 12}], "metrics": {}})
        return super().route(path, q, headers)


def test_a_trace_summary_without_its_id_is_named_and_the_logs_still_judged(tmp_path):
    logs = _logs(T - 600, 300, False, 1) + _logs(T - 300, 300, True, 2)
    with FakeLoki(loki_streams(logs)) as loki, _TraceWithoutId([]) as tempo:
        cfg = ranker_config({"loki": {"url": loki.url}, "tempo": {"url": tempo.url}},
                            services=["api", "preprocess"], base_dir=str(tmp_path))
        vigil = Vigil(cfg, store=Store(f"sqlite:///{tmp_path / 'v.db'}"), prometheus=SloBreach(),
                      registry=Registry(), notifiers={})
        report = vigil.run_cycle("ranker", T)

    assert any(f.kind == FindingKind.LOG_ANOMALY and f.service == "preprocess" for f in report.findings), \
        [f.message for f in report.findings]
    said = " ".join([*report.blind, *(f.message for f in report.findings)])
    assert "traces[0]: expected a trace with a hex traceID" in said and "internal error" not in said, said
