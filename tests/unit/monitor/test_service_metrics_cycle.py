"""The daemon's root-cause metric series (`root_cause.metrics`) through its own detect and
correlate stages: the service whose metrics moved ranks first, a caller whose symptom its
callee explains (call graph from traces, or given in `root_cause.call_graph` on a system
without them) ranks below it, a meaning given in config sets
which way is bad, and what could not be read is said on every cause. The benchmark and
the daemon share the function and, given the same series, the ranking."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import nezha_files as nf
from benchmarks import rca_nezha as rn
from correlators.call_graph import given_graph
from correlators.causes import CorrelationSettings
from correlators.incident import CauseKind
from detectors.anomaly import AnomalyTuning
from detectors.records import FindingKind, Series
from detectors.traces import ServiceGraph
from monitor.config import parse_config
from monitor.cycle import correlate as correlate_stage
from monitor.cycle.correlate import correlate, rank_services
from monitor.cycle.detect import DetectRequest, detect
from monitor.cycle.detect_services import detect_service_metrics
from monitor.cycle.plan import CycleStart
from monitor.types import RawSignals, ServiceEvidence, ServiceMetricSignals, Window
from tests.synthetic_traces import synthetic_traces
from tests.unit.benchmarks.test_nezha_files import _folder

T = 1_800_000_000.0
STEP = 60.0
# schedule defaults: window [t - 30 min, t], normal period the hour before it
W = Window(t=T, start=T - 1800, baseline_start=T - 5400, baseline_end=T - 1800)


def series(name: str, service: str, level: float, *, drop_to: float | None = None, seed: int = 0) -> Series:
    """A level with small noise over the normal period and the window; `drop_to` for the
    last ten minutes."""
    rng = np.random.default_rng(seed)
    ts = np.arange(W.baseline_start, W.t + 1, STEP)
    v = level * (1 + rng.normal(0, 0.002, len(ts)))
    if drop_to is not None:
        v[ts >= W.t - 600] = drop_to
    return Series(name, {"service": service}, ts, v)


def request(meanings: dict | None = None) -> DetectRequest:
    cfg = parse_config({"models": [{"name": "m", "services": ["api", "preprocess"]}]})
    return DetectRequest(cfg.models[0], cfg.policy, W, STEP, 60.0, AnomalyTuning(), CycleStart())


def raw_with(sig: ServiceMetricSignals, *, traces: bool = True) -> RawSignals:
    raw = RawSignals(service_metrics=sig)
    if traces:  # api calls preprocess; nothing changes in the traces themselves
        raw.spans_baseline = baseline_spans(1800)
        raw.spans_current = synthetic_traces(60, W.t - 600, seed=1)
        raw.baseline_window = (W.baseline_end - 1800, W.baseline_end)  # as gather reads it: the window before
    return raw


def baseline_spans(seconds: float) -> list:
    """Sixty traces whose records cover the last `seconds` of the normal period."""
    return synthetic_traces(30, W.baseline_end - seconds) + synthetic_traces(30, W.baseline_end - 30, seed=2)


def services_of(incident) -> list:
    return [c for c in incident.causes if c.kind is CauseKind.SERVICE]


def test_the_service_whose_availability_fell_ranks_first_and_explains_its_caller() -> None:
    sig = ServiceMetricSignals(names=["availability", "cpu_usage"], series=[
        series("availability", "api", 0.999, drop_to=0.9, seed=1),  # the caller sees its callee's failures
        series("availability", "preprocess", 0.999, drop_to=0.6, seed=2),
        series("cpu_usage", "api", 0.4, seed=3), series("cpu_usage", "preprocess", 0.4, seed=4)])
    found = detect(raw_with(sig), request())
    moved = {f.service for f in found.findings if f.kind is FindingKind.METRIC_ANOMALY}
    assert moved == {"api", "preprocess"}
    assert all(f.model == "m" for f in found.findings)
    c = correlate("m", found, ["api", "preprocess"], CycleStart(), [], W, CorrelationSettings())
    assert c.incident is not None
    ranked = services_of(c.incident)
    assert [x.entity for x in ranked] == ["preprocess", "api"]
    assert ranked[1].evidence["explained_by"] == "preprocess"
    assert ranked[0].evidence["modalities"]["metrics"] > 0
    assert ranked[0].evidence["strength"] > ranked[1].evidence["strength"] > 0
    assert ranked[0].evidence["observed"] == ["metrics", "traces"]
    assert ranked[0].evidence["lacking"] == ["no logs in the window"]


def test_without_the_call_graph_the_caller_is_not_explained() -> None:
    """The demotion above comes from the traces' call graph, not from the drop sizes alone."""
    sig = ServiceMetricSignals(names=["availability"], series=[
        series("availability", "api", 0.999, drop_to=0.9, seed=1),
        series("availability", "preprocess", 0.999, drop_to=0.6, seed=2)])
    found = detect(raw_with(sig, traces=False), request())
    ranked = rank_services(found.services, ["api", "preprocess"], W.t, found.findings)
    assert [x.evidence["explained_by"] for x in ranked] == [None, None]


def _latency_and_saturation(call_graph: tuple[tuple[str, str], ...]) -> list:
    """api's latency rises tenfold; preprocess, which api calls, saturates its CPU (a
    smaller anomaly, but the cause). No traces: only a given graph knows who calls whom."""
    sig = ServiceMetricSignals(names=["latency_seconds", "cpu_saturation"], series=[
        series("latency_seconds", "api", 0.2, drop_to=2.0, seed=1),
        series("latency_seconds", "preprocess", 0.2, seed=2),
        series("cpu_saturation", "api", 0.4, seed=3),
        series("cpu_saturation", "preprocess", 0.4, drop_to=0.9, seed=4)])
    raw = raw_with(sig, traces=False)
    raw.call_graph = call_graph
    found = detect(raw, request())
    c = correlate("m", found, ["api", "preprocess"], CycleStart(), [], W, CorrelationSettings())
    assert c.incident is not None
    return services_of(c.incident)


def test_a_configured_call_graph_puts_the_callee_first_on_a_system_without_traces() -> None:
    without = _latency_and_saturation(())
    given = _latency_and_saturation((("api", "preprocess"),))
    assert [x.entity for x in without] == ["api", "preprocess"]
    assert [x.evidence["explained_by"] for x in without] == [None, None]
    assert [x.entity for x in given] == ["preprocess", "api"]
    assert given[1].evidence["explained_by"] == "preprocess"
    assert given[0].evidence["lacking"] == ["no logs in the window", "no traces in the window"]


def test_gather_hands_the_configured_call_graph_to_detect() -> None:
    from tests.helpers_vigil import StubPrometheus

    raw, _ = _gather(StubPrometheus(), {"call_graph": [{"caller": "api", "callee": "preprocess"}]})
    assert raw.call_graph == (("api", "preprocess"),) and raw.service_metrics is None


def test_a_meaning_given_in_config_sets_which_way_is_bad() -> None:
    """`goodput` says nothing by its name (both ways, half weight); given as availability,
    its fall counts in full, and a rise would not count at all."""
    def ranked(meanings: dict[str, str]) -> list:
        sig = ServiceMetricSignals(names=["goodput"], meanings=meanings, series=[
            series("goodput", "api", 100.0, seed=1), series("goodput", "preprocess", 100.0, drop_to=40.0, seed=2)])
        found = detect(raw_with(sig, traces=False), request())
        return rank_services(found.services, ["api", "preprocess"], W.t, found.findings)

    inferred, given = ranked({}), ranked({"goodput": "availability"})
    assert inferred[0].entity == given[0].entity == "preprocess"
    f_inferred, f_given = inferred[0].evidence["findings"][0], given[0].evidence["findings"][0]
    assert (f_inferred["evidence"]["class"], f_given["evidence"]["class"]) == ("unknown", "availability")
    assert given[0].score > inferred[0].score

    sig = ServiceMetricSignals(names=["goodput"], meanings={"goodput": "availability"}, series=[
        series("goodput", "preprocess", 100.0, drop_to=160.0, seed=2)])
    found = detect(raw_with(sig, traces=False), request())
    assert not [f for f in found.findings if f.kind is FindingKind.METRIC_ANOMALY]


def test_metrics_that_could_not_be_read_are_said_on_every_cause_and_lower_confidence() -> None:
    ok = ServiceMetricSignals(names=["availability", "latency"], series=[
        series("availability", "api", 0.999, seed=1), series("availability", "preprocess", 0.999, drop_to=0.6, seed=2)])
    part = ServiceMetricSignals(names=ok.names, series=ok.series, unread=["latency (query rejected: bad)"])
    full = rank_services(detect(raw_with(ok), request()).services, ["api"], W.t,
                         detect(raw_with(ok), request()).findings)
    found = detect(raw_with(part), request())
    lowered = rank_services(found.services, ["api"], W.t, found.findings)
    assert lowered[0].entity == full[0].entity == "preprocess"
    assert "root-cause metrics not read: latency (query rejected: bad)" in lowered[0].evidence["lacking"]
    assert lowered[0].score < full[0].score


def test_a_series_with_no_normal_period_gives_no_verdict_and_says_so() -> None:
    late = series("availability", "preprocess", 0.999, drop_to=0.6, seed=2)
    keep = late.timestamps >= W.start
    sig = ServiceMetricSignals(names=["availability"], series=[
        Series(late.name, late.labels, late.timestamps[keep], late.values[keep])])
    result = detect_service_metrics(sig, W)
    assert result.report.findings == []
    assert result.lacking == ["no metrics in the normal period"]
    assert result.report.lacking == ["short normal period for 1 metric(s): fewer than 10 samples",
                                     "no baseline for 1 metric(s): availability"]


def test_the_benchmark_and_the_daemon_call_one_ranking_function() -> None:
    assert rn.rank_services is correlate_stage.shared_rank_services


@pytest.fixture
def case(tmp_path: Path):
    folder = nf.NezhaFolder(_folder(tmp_path, 50))
    return folder, folder.labels.iloc[0]


def test_given_the_same_series_the_benchmark_and_the_daemon_rank_alike(case) -> None:
    """A metrics-only case with a given service map: the benchmark's own path, and the
    daemon's detect and correlate functions on the same normal and case series (the
    case's points before the benchmark's window being its normal period here)."""
    folder, row = case
    bench, _ = rn.run_case(folder, row)
    normal = nf.series(folder.normal_table("metrics", folder.normal_for(row)))
    current = nf.series(folder.case("metrics", row["case_id"]))
    alert = float(row["onset_ts"])
    start, end = rn.metric_window(current, alert)
    w = Window(t=end, start=start, baseline_start=min(float(s.timestamps[0]) for s in normal), baseline_end=start - 1)
    joined = {}
    for s in normal + current:
        key = (s.name, s.labels["service"])
        if key in joined:
            old = joined[key]
            s = Series(s.name, {"service": s.labels["service"]}, np.concatenate([old.timestamps, s.timestamps]),
                       np.concatenate([old.values, s.values]))
        joined[key] = Series(s.name, {"service": s.labels["service"]}, s.timestamps, s.values)
    result = detect_service_metrics(ServiceMetricSignals(series=list(joined.values()), names=["m"]), w)
    # The folder's map enters as the daemon's `root_cause.call_graph` does (detect's given graph).
    evidence = ServiceEvidence([], [], ServiceGraph(), {k[1]: {"metrics"} for k in joined},
                               metrics=result.report, lacking=tuple(result.lacking),
                               given_graph=given_graph(folder.graph_for(row) or ()))
    daemon = rank_services(evidence, sorted({k[1] for k in joined}), alert, result.report.findings)
    assert [c.entity for c in daemon] == [c.entity for c in bench]
    assert [c.evidence["explained_by"] for c in daemon] == [c.evidence["explained_by"] for c in bench]
    assert daemon[0].entity == row["root_cause_service"]


# ----------------------------------------------------------------------------- gather
def _gather(prom, root_cause: dict):
    from monitor.config_root_cause import RootCauseConfig
    from monitor.cycle.gather import GatherRequest, gather
    from tests.unit.monitor.test_cycle_stages import sources

    cfg = parse_config({"store": {"url": "sqlite://"}, "models": [{"name": "m"}]})  # no vigil.db in the checkout
    src = sources(cfg, prom)
    raw = gather(src, GatherRequest(cfg.models[0], W, None, None, root_cause=RootCauseConfig(**root_cause)))
    return raw, src


def test_gather_reads_each_metric_over_the_normal_period_and_the_window_and_names_it() -> None:
    from tests.helpers_vigil import StubPrometheus

    class ByApp(StubPrometheus):
        def query_range(self, query, start, end, step=None, *, name=None):
            return [Series(s.name, {"app": a, "__name__": "x"}, s.timestamps, s.values)
                    for s in super().query_range(query, start, end, step, name=name) for a in ("api", "db")]

    prom = ByApp({"q_errors": lambda ts: ts * 0 + 1.0})
    raw, _ = _gather(prom, {"service_label": "app", "metrics": [{"name": "errs", "query": "q_errors"},
                                                                {"name": "lat", "query": "q_none"}]})
    assert prom.calls[0] == ("q_errors", W.baseline_start, W.t)
    sig = raw.service_metrics
    assert [(s.name, s.labels["service"]) for s in sig.series] == [("errs", "api"), ("errs", "db")]
    assert "__name__" not in sig.series[0].labels
    assert raw.gaps.findings == [] and sig.unread == []  # a query matching nothing is no error


def test_gather_names_a_metric_whose_series_lack_the_service_label() -> None:
    from tests.helpers_vigil import StubPrometheus

    raw, _ = _gather(StubPrometheus({"q": lambda ts: ts * 0}), {"metrics": [{"name": "errs", "query": "q"}]})
    [gap] = raw.gaps.findings
    assert gap.entity == "root-cause metric errs" and "root_cause.service_label" in gap.message
    assert raw.service_metrics.unread == ["errs (no series labelled 'service')"]


def test_gather_asks_a_dead_prometheus_once_and_lists_every_metric_unread() -> None:
    from tests.helpers_vigil import StubPrometheus

    prom = StubPrometheus()
    prom.down = True
    raw, src = _gather(prom, {"metrics": [{"name": "a", "query": "qa"}, {"name": "b", "query": "qb"}]})
    assert len(prom.calls) == 1 and src.health.is_down("prometheus")
    assert [f.entity for f in raw.gaps.findings] == ["root-cause metric a"]
    assert raw.service_metrics.unread == ["a (Prometheus unavailable (connection refused))",
                                          "b (Prometheus unavailable)"]
    result = detect_service_metrics(raw.service_metrics, W)
    assert len(result.lacking) == 1 and result.lacking[0].startswith("no metrics: none of the root-cause")


def _ranked_with_trace_baseline(covered: float | None) -> list:
    """preprocess's availability falls; Tempo answered for the whole normal period with
    traces covering its last `covered` seconds (None: no traces at all)."""
    sig = ServiceMetricSignals(names=["availability"], series=[
        series("availability", "api", 0.999, seed=1), series("availability", "preprocess", 0.999, drop_to=0.6, seed=2)])
    raw = raw_with(sig)
    raw.spans_baseline = [] if covered is None else baseline_spans(covered)
    found = detect(raw, request())
    c = correlate("m", found, ["api", "preprocess"], CycleStart(), [], W, CorrelationSettings())
    assert c.incident is not None
    return services_of(c.incident)


def test_a_trace_baseline_that_was_empty_or_short_is_said_on_every_cause_and_lowers_confidence() -> None:
    """Tempo answering nothing for the normal period (a new service), or traces for only
    its last five minutes (a retention gap), makes calls new to the trace checks: the
    diagnosis says so, in the words the benchmarks print, and is less sure; same order."""
    full, empty, short = (_ranked_with_trace_baseline(c) for c in (1800, None, 300))
    assert [x.entity for x in full][0] == [x.entity for x in empty][0] == [x.entity for x in short][0] == "preprocess"
    assert full[0].evidence["lacking"] == ["no logs in the window"]
    assert empty[0].evidence["lacking"] == ["no logs in the window", "no traces in the normal period"]
    assert short[0].evidence["lacking"] == ["no logs in the window",
                                            "short normal period for traces: 299 s for a 1800 s window"]
    assert empty[0].score < full[0].score and short[0].score < full[0].score
    assert "no traces in the normal period" in empty[0].explanation
