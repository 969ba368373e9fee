"""Root-cause ranking: the seeds' scene end to end, inheritance, missing modalities."""
from __future__ import annotations

import random

import numpy as np

from correlators.coverage import observed_modalities, what_lacked
from correlators.incident import CauseKind
from correlators.rca import RcaContext, RcaParams, rank_root_causes
from detectors.logs import LogDetector, LogReference, LogWindow
from detectors.records import Direction, Finding, FindingKind, LogRecord, Series
from detectors.service_metrics import ServiceMetricsDetector
from detectors.traces import EdgeStats, ServiceGraph, TraceDetector, TraceWindow
from tests.synthetic_traces import synthetic_traces

MS = 1_000_000
_traces = synthetic_traces


T_BASE, T_CUR = 0.0, 10_000.0


def _logs(t0: float, seconds: int, oom: bool, seed: int) -> list[LogRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(seconds):
        out.append(LogRecord(t0 + i, "api", f"INFO POST /predict 200 in {rng.randint(40, 90)} ms", level="INFO"))
        out.append(LogRecord(t0 + i + 0.1, "preprocess", f"INFO transformed batch {rng.randint(1, 9999)}",
                             level="INFO", pod="preprocess-7d9f"))
    if oom:
        for i in range(6):
            out.append(LogRecord(t0 + 30 + i * 20, "preprocess",
                                 f"ERROR worker {i} died: java.lang.OutOfMemoryError: Java heap space",
                                 level="ERROR", pod="preprocess-7d9f"))
    return out


def _metrics(t0: float, n: int, p99: float, seed: int) -> list[Series]:
    rng = np.random.default_rng(seed)
    ts = t0 + 60.0 * np.arange(n)
    out = []
    for svc in ("api", "preprocess", "billing"):
        out.append(Series("cpu_usage", {"service": svc, "pod": f"{svc}-1"}, ts, rng.uniform(0.2, 0.3, n)))
    out.append(Series("memory_bytes", {"service": "preprocess", "pod": "preprocess-7d9f"}, ts,
                      rng.uniform(1.0e9, 1.1e9, n)))
    out.append(Series("latency_p99_s", {"service": "api", "pod": "api-1"}, ts, np.full(n, p99) *
                      rng.uniform(0.95, 1.05, n)))
    return out


def _seed_scene_causes():
    """The composition the daemon and the Nezha benchmark use: each detector fitted on the
    normal period, the window scored, the findings ranked (rca itself runs no detector)."""
    logs_base, logs_cur = _logs(T_BASE, 600, False, 1), _logs(T_CUR, 300, True, 2)
    spans_base, spans_cur = _traces(200, T_BASE), _traces(200, T_CUR, pre_ms=300, seed=3)
    metrics_base, metrics_cur = _metrics(T_BASE, 60, 0.1, 1), _metrics(T_CUR, 5, 0.45, 2)
    start, end = T_CUR, T_CUR + 300
    metrics, logs, traces = ServiceMetricsDetector(), LogDetector(), TraceDetector()
    mf = metrics.score(metrics.fit(metrics_base, T_BASE, T_BASE + 3600), metrics_cur, start, end)
    log_state = logs.fit(LogReference(logs_base, spans_base), min(r.ts for r in logs_base),
                         max(r.ts for r in logs_base))
    lf = logs.score(log_state, LogWindow(logs_cur, spans_cur), start, end)
    report = traces.assess(traces.fit(spans_base, T_BASE, T_BASE + 300), TraceWindow(spans_cur), start, end)
    return rank_root_causes(metric_findings=mf, log_findings=lf, trace_findings=report.findings,
                            topology=report.graph, alert_time=T_CUR + 60,
                            context=RcaContext(candidates=["api", "preprocess", "billing"],
                                               observed=observed_modalities(metrics_cur, logs_cur, spans_cur)))


def test_the_seed_scene_names_preprocess_with_log_and_trace_evidence():
    causes = _seed_scene_causes()
    top = causes[0]
    assert top.kind is CauseKind.SERVICE and top.entity == "preprocess"
    assert top.evidence["modalities"]["logs"] > 0 and top.evidence["modalities"]["traces"] > 0
    assert "OutOfMemoryError" in top.explanation or "self time" in top.explanation
    assert [c.entity for c in causes] == ["preprocess", "api", "billing"]
    assert all(0 <= c.score <= 1 for c in causes)
    assert causes[0].score > causes[1].score
    # The p99 the user sees is on api, but api's latency is inherited from its callee.
    api = next(c for c in causes if c.entity == "api")
    assert api.score < top.score


def _f(kind, service, stat, score, onset=100.0, **ev) -> Finding:
    return Finding(kind=kind, entity=f"{service}: {stat}", value=1.0, threshold=0.5, window_start=0.0,
                   window_end=300.0, onset=onset, score=score, service=service, direction=Direction.UP,
                   statistic=stat, message=f"{service} {stat}", evidence=ev)


def _rank_logs(logs: list[Finding], graph: ServiceGraph, alert_time: float) -> list:
    """The ranking from log findings alone, over the call graph."""
    return rank_root_causes(metric_findings=[], log_findings=logs, trace_findings=[], topology=graph,
                            alert_time=alert_time)


def test_errors_passed_up_from_a_callee_are_discounted():
    graph = ServiceGraph({("frontend", "orders"): EdgeStats(calls_current=50),
                          ("orders", "inventory"): EdgeStats(calls_current=50)})
    logs = [_f(FindingKind.LOG_ANOMALY, "frontend", "new_error_template", 0.9, onset=120),
            _f(FindingKind.LOG_ANOMALY, "orders", "new_error_template", 0.9, onset=110),
            _f(FindingKind.LOG_ANOMALY, "inventory", "new_error_template", 0.8, onset=100)]
    causes = _rank_logs(logs, graph, 130.0)
    assert [c.entity for c in causes] == ["inventory", "orders", "frontend"]
    assert causes[1].evidence["inherited_from"] == "inventory"


def test_missing_modalities_lower_confidence_but_still_rank():
    metric = [_f(FindingKind.METRIC_ANOMALY, "a", "range_ratio", 0.8, metric="cpu"),
              _f(FindingKind.METRIC_ANOMALY, "b", "range_ratio", 0.8, metric="cpu")]
    causes = rank_root_causes(metric_findings=metric, log_findings=[], trace_findings=[], topology=None,
                              alert_time=0.0,
                              context=RcaContext(observed={"a": {"metrics", "logs", "traces"}, "b": {"metrics"}}))
    by = {c.entity: c for c in causes}
    assert by["a"].score > by["b"].score
    assert by["b"].evidence["missing"] == ["logs", "traces"]


def test_every_candidate_is_ranked_strictly_even_with_no_findings():
    causes = rank_root_causes(metric_findings=[], log_findings=[], trace_findings=[], topology=None,
                              alert_time=0.0, context=RcaContext(candidates=["c", "a", "b"]))
    assert [c.entity for c in causes] == ["a", "b", "c"]
    assert all(c.score == 0 for c in causes) and all("no anomaly" in c.explanation for c in causes)


def test_network_delay_is_put_on_the_endpoint_all_slow_edges_share():
    graph = ServiceGraph({(c, "db"): EdgeStats(calls_current=20, edge_ms_baseline=2, edge_ms_current=900)
                          for c in ("web", "jobs", "api")})
    graph.edges[("web", "cache")] = EdgeStats(calls_current=20, edge_ms_baseline=2, edge_ms_current=2)
    graph.edges[("lb", "web")] = EdgeStats(calls_current=20, edge_ms_baseline=2, edge_ms_current=2)
    tf = [_f(FindingKind.TRACE_ANOMALY, "db", "edge_time_ms_p50", 0.9, caller=c, callee="db")
          for c in ("web", "jobs", "api")]
    causes = rank_root_causes(metric_findings=[], log_findings=[], trace_findings=tf, topology=graph,
                              alert_time=0.0)
    assert causes[0].entity == "db"
    assert {c.entity: c.score for c in causes}["web"] < causes[0].score


def test_an_error_that_names_another_service_points_at_it():
    # api's error says it could not reach preprocess; preprocess logged nothing itself.
    line = "ERROR request failed: IllegalStateException: No instances available for preprocess"
    logs = [_f(FindingKind.LOG_ANOMALY, "api", "new_error_template", 0.9, samples=[line]),
            _f(FindingKind.LOG_ANOMALY, "billing", "new_error_template", 0.6, samples=["ERROR invoice rounding"])]
    causes = rank_root_causes(metric_findings=[], log_findings=logs, trace_findings=[], topology=None,
                              alert_time=100.0, context=RcaContext(candidates=["api", "preprocess", "billing"]))
    by = {c.entity: c.score for c in causes}
    assert by["api"] < 0.6 and by["preprocess"] > 0
    assert causes[0].entity == "billing"  # its own error, named by no one, now outranks api's relayed one


def test_a_callee_whose_code_path_broke_silently_takes_its_callers_errors():
    graph = ServiceGraph({("travel", "route"): EdgeStats(calls_current=50)})
    logs = [_f(FindingKind.LOG_ANOMALY, "travel", "new_error_template", 0.9, onset=120),
            _f(FindingKind.LOG_ANOMALY, "route", "vanished_template", 0.8, onset=100)]
    causes = _rank_logs(logs, graph, 130.0)
    assert [c.entity for c in causes][:2] == ["route", "travel"]
    assert causes[1].evidence["inherited_from"] == "route"


def test_caller_errors_that_begin_long_after_the_callees_failure_are_its_own():
    # food calls travel; travel has been failing since long before the alert, food's own
    # errors began two minutes later: travel's failure did not cause them.
    graph = ServiceGraph({("food", "travel"): EdgeStats(calls_current=50)})
    logs = [_f(FindingKind.LOG_ANOMALY, "food", "new_error_template", 0.9, onset=226),
            _f(FindingKind.LOG_ANOMALY, "travel", "new_error_template", 0.5, onset=100)]
    causes = _rank_logs(logs, graph, 170.0)
    assert causes[0].entity == "food" and causes[0].evidence["inherited_from"] is None
    # The same errors arriving together with the callee's failure are passed up.
    logs[0] = _f(FindingKind.LOG_ANOMALY, "food", "new_error_template", 0.9, onset=105)
    causes = _rank_logs(logs, graph, 170.0)
    assert {c.entity: c for c in causes}["food"].evidence["inherited_from"] == "travel"


def test_a_callee_whose_sequence_of_lines_broke_takes_its_callers_errors():
    graph = ServiceGraph({("preserve", "travel2"): EdgeStats(calls_current=50)})
    logs = [_f(FindingKind.LOG_ANOMALY, "preserve", "new_error_template", 0.9, onset=120),
            _f(FindingKind.LOG_ANOMALY, "travel2", "broken_sequence", 0.9, onset=100)]
    causes = _rank_logs(logs, graph, 130.0)
    assert [c.entity for c in causes][:2] == ["travel2", "preserve"]


def test_correlators_only_rank_they_run_no_detector():
    """correlators/ import the shared records and the service graph type, never a detector:
    findings come in (fitted and scored by the caller), ranked causes go out."""
    import ast
    from pathlib import Path

    imported = set()
    for path in (Path(__file__).resolve().parents[3] / "correlators").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    # metric_meaning is vocabulary (which way is bad for a metric name), not a detector.
    allowed = {"detectors.records", "detectors.traces.graph", "detectors.metric_meaning"}
    assert {m for m in imported if m.startswith("detectors")} <= allowed


def test_coverage_comes_from_the_records_each_modality_returned():
    logs = [LogRecord(1.0, "api", "INFO ok"), LogRecord(2.0, "db", "INFO ok")]
    spans = _traces(2, 0.0)
    metrics = [Series("cpu", {"service": "db"}, np.array([0.0]), np.array([1.0])), Series("up", {}, np.array([0.0]),
                                                                                            np.array([1.0]))]
    observed = observed_modalities(metrics, logs, spans)
    assert observed["db"] == {"metrics", "logs"} and observed["api"] >= {"logs", "traces"}
    # The same findings ranked with and without that coverage: a service seen in one
    # modality only is ranked with less confidence.
    f = [_f(FindingKind.METRIC_ANOMALY, "db", "range_ratio", 0.8, metric="cpu")]
    plain = rank_root_causes(metric_findings=f, log_findings=[], trace_findings=[], topology=None, alert_time=0.0)
    covered = rank_root_causes(metric_findings=f, log_findings=[], trace_findings=[], topology=None, alert_time=0.0,
                               context=RcaContext(observed={"db": {"metrics"}}))
    assert covered[0].entity == plain[0].entity == "db" and covered[0].score < plain[0].score


def test_a_caller_whose_availability_drop_its_callee_explains_ranks_below_it():
    # Metrics only, the graph given (a service map): web -> orders -> db. The front end
    # loses more availability than the failing service, but its callee explains it.
    graph = ServiceGraph({("web", "orders"): EdgeStats(), ("orders", "db"): EdgeStats()})
    m = [_f(FindingKind.METRIC_ANOMALY, "web", "robust_z", 0.9, metric="availability_Average"),
         _f(FindingKind.METRIC_ANOMALY, "orders", "robust_z", 0.6, metric="availability_Average"),
         _f(FindingKind.METRIC_ANOMALY, "db", "robust_z", 0.3, metric="requests_Sum")]
    causes = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=graph,
                              alert_time=0.0)
    assert [c.entity for c in causes][:2] == ["orders", "web"]
    assert causes[1].evidence["explained_by"] == "orders"
    # Traffic on db (a count, direction unknown) does not explain a caller's failures.
    assert causes[0].evidence["explained_by"] is None


def test_a_callee_weaker_than_the_share_does_not_explain_its_caller():
    graph = ServiceGraph({("web", "orders"): EdgeStats()})
    m = [_f(FindingKind.METRIC_ANOMALY, "web", "robust_z", 0.9, metric="latency_p99"),
         _f(FindingKind.METRIC_ANOMALY, "orders", "robust_z", 0.1, metric="latency_p99")]
    causes = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=graph,
                              alert_time=0.0, params=RcaParams(explain_share=0.5))
    assert causes[0].entity == "web" and causes[0].evidence["explained_by"] is None


def test_ties_are_broken_by_onset_then_strength_never_by_name_and_reported():
    m = [_f(FindingKind.METRIC_ANOMALY, s, "robust_z", 0.5, onset=o, metric="cpu")
         for s, o in (("a", 200.0), ("b", 100.0), ("c", 200.0))]
    causes = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=None,
                              alert_time=0.0, context=RcaContext(strength={"a": 7.0, "b": 7.0, "c": 9.0}),
                              params=RcaParams(onset_bonus=0.0))
    assert [c.entity for c in causes] == ["b", "c", "a"]
    assert causes[0].evidence["tie"] == {"with": "c", "broken_by": "onset"}
    assert causes[2].evidence["tie"] == {"with": "c", "broken_by": "strength"}
    quiet = rank_root_causes(metric_findings=[], log_findings=[], trace_findings=[], topology=None,
                             alert_time=0.0, context=RcaContext(candidates=["x", "y"], strength={"y": 2.0}))
    assert [c.entity for c in quiet] == ["y", "x"] and quiet[0].evidence["tie"]["broken_by"] == "strength"


def test_what_the_diagnosis_lacked_is_reported_and_lowers_confidence_not_order():
    m = [_f(FindingKind.METRIC_ANOMALY, "a", "robust_z", 0.8, metric="cpu"),
         _f(FindingKind.METRIC_ANOMALY, "b", "robust_z", 0.4, metric="cpu")]
    lacking = what_lacked({"metrics": 10, "logs": 0, "traces": 5}, {"metrics": 100, "logs": 0, "traces": 0})
    assert lacking == ["no logs at all", "no traces in the normal period"]
    full = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=None, alert_time=0.0)
    poor = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=None, alert_time=0.0,
                            context=RcaContext(lacking=lacking))
    assert [c.entity for c in poor] == [c.entity for c in full]
    assert poor[0].score < full[0].score
    assert poor[0].evidence["lacking"] == lacking and poor[0].evidence["confidence_factor"] < 1
    assert "what the diagnosis lacked: no logs at all" in poor[0].explanation


def test_a_log_or_trace_reference_shorter_than_half_its_window_is_reported() -> None:
    counts = {"metrics": 10, "logs": 100, "traces": 50}
    assert what_lacked(counts, counts, seconds={"logs": (170.0, 200.0), "traces": (170.0, 200.0)}) == []
    assert what_lacked(counts, counts, seconds={"logs": (59.0, 186.0)}) == [
        "short normal period for logs: 59 s for a 186 s window"]
    # No records in the window: nothing was judged against the reference, however short.
    assert what_lacked({"metrics": 10, "logs": 0, "traces": 50}, counts, seconds={"logs": (5.0, 186.0)}) == [
        "no logs in the window"]


def test_the_score_written_in_the_explanation_is_the_score_the_cause_carries() -> None:
    # Slack prints "NN% confidence" from the cause's score and then its explanation: the
    # two must not name different figures when the diagnosis lacked something.
    m = [_f(FindingKind.METRIC_ANOMALY, "a", "robust_z", 0.8, metric="cpu")]
    causes = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=None, alert_time=0.0,
                              context=RcaContext(lacking=["no logs in the window", "no traces in the window"]))
    assert causes[0].score < 0.8
    assert f"(score {causes[0].score:.2f})" in causes[0].explanation


def test_between_equally_strong_failing_callees_errors_are_passed_up_from_the_one_that_failed_first() -> None:
    # gateway calls two callees that fail as strongly; the one whose failure began first
    # is named, whatever the names (never the set's iteration order, which varies by run).
    for early, late in (("alpha", "omega"), ("omega", "alpha")):
        graph = ServiceGraph({("gateway", early): EdgeStats(calls_current=50),
                              ("gateway", late): EdgeStats(calls_current=50)})
        logs = [_f(FindingKind.LOG_ANOMALY, "gateway", "new_error_template", 0.9, onset=120),
                _f(FindingKind.LOG_ANOMALY, early, "new_error_template", 0.8, onset=100),
                _f(FindingKind.LOG_ANOMALY, late, "new_error_template", 0.8, onset=110)]
        m = [_f(FindingKind.METRIC_ANOMALY, "gateway", "robust_z", 0.9, onset=120, metric="latency_p99"),
             _f(FindingKind.METRIC_ANOMALY, early, "robust_z", 0.8, onset=100, metric="latency_p99"),
             _f(FindingKind.METRIC_ANOMALY, late, "robust_z", 0.8, onset=100, metric="latency_p99")]
        causes = rank_root_causes(metric_findings=m, log_findings=logs, trace_findings=[], topology=graph,
                                  alert_time=130.0)
        by = {c.entity: c for c in causes}
        assert by["gateway"].evidence["inherited_from"] == early
        # Equal strength and onset: the name decides, the same way on every run.
        assert by["gateway"].evidence["explained_by"] == "alpha"


def test_a_service_with_no_data_at_all_in_the_window_is_not_called_free_of_anomalies() -> None:
    # payments wrote no line, no span and no metric in the window (its pods are gone):
    # "no anomaly found" would read as an all clear for the service most likely down.
    m = [_f(FindingKind.METRIC_ANOMALY, "api", "robust_z", 0.8, metric="error_rate")]
    causes = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=None, alert_time=0.0,
                              context=RcaContext(candidates=["api", "payments", "search"],
                                                 observed={"api": {"metrics", "logs"}, "search": {"metrics"}}))
    by = {c.entity: c for c in causes}
    assert "no anomaly found" not in by["payments"].explanation
    assert "no metrics, logs or traces of it in the window" in by["payments"].explanation
    assert by["payments"].evidence["missing"] == ["metrics", "logs", "traces"]
    # A service seen in some modality and quiet there keeps the plain words.
    assert "no anomaly found in its metrics" in by["search"].explanation


def test_two_services_calling_each_other_do_not_both_pass_their_errors_up_from_the_other() -> None:
    # orders and stock call each other (a callback). stock failed first, orders' errors
    # followed 10 s later: only orders' errors are stock's passed up, never the reverse.
    graph = ServiceGraph({("orders", "stock"): EdgeStats(calls_current=50),
                          ("stock", "orders"): EdgeStats(calls_current=50)})
    logs = [_f(FindingKind.LOG_ANOMALY, "orders", "new_error_template", 0.9, onset=110),
            _f(FindingKind.LOG_ANOMALY, "stock", "new_error_template", 0.9, onset=100),
            _f(FindingKind.LOG_ANOMALY, "billing", "new_error_template", 0.6, onset=105)]
    causes = _rank_logs(logs, graph, 130.0)
    by = {c.entity: c for c in causes}
    assert by["orders"].evidence["inherited_from"] == "stock"
    assert by["stock"].evidence["inherited_from"] is None
    assert "passed up" not in by["stock"].explanation
    assert causes[0].entity == "stock"



def test_two_services_calling_each_other_do_not_both_explain_the_others_latency() -> None:
    # web and auth call each other (a token callback); auth's latency rose first, web's
    # 20 s later: web's latency is explained by auth, not auth's by web as well.
    graph = ServiceGraph({("web", "auth"): EdgeStats(), ("auth", "web"): EdgeStats()})
    m = [_f(FindingKind.METRIC_ANOMALY, "web", "robust_z", 0.9, onset=120, metric="latency_p99"),
         _f(FindingKind.METRIC_ANOMALY, "auth", "robust_z", 0.8, onset=100, metric="latency_p99"),
         _f(FindingKind.METRIC_ANOMALY, "mail", "robust_z", 0.6, onset=110, metric="latency_p99")]
    causes = rank_root_causes(metric_findings=m, log_findings=[], trace_findings=[], topology=graph,
                              alert_time=130.0)
    by = {c.entity: c for c in causes}
    assert by["web"].evidence["explained_by"] == "auth"
    assert by["auth"].evidence["explained_by"] is None
    assert causes[0].entity == "auth"


def test_a_callee_killed_for_memory_takes_its_callers_errors_and_explains_its_latency() -> None:
    # orders calls stock; stock was OOM-killed (a fatal pattern, its only evidence), then
    # orders logged errors and its latency rose. stock failing is what orders shows: its
    # errors are passed up, its latency explained, and stock ranks first.
    graph = ServiceGraph({("orders", "stock"): EdgeStats(calls_current=50)})
    logs = [_f(FindingKind.LOG_ANOMALY, "orders", "new_error_template", 0.9, onset=110),
            _f(FindingKind.LOG_ANOMALY, "stock", "fatal_oom_killed", 0.9, onset=100)]
    m = [_f(FindingKind.METRIC_ANOMALY, "orders", "robust_z", 0.9, onset=110, metric="latency_p99")]
    causes = rank_root_causes(metric_findings=m, log_findings=logs, trace_findings=[], topology=graph,
                              alert_time=130.0)
    by = {c.entity: c for c in causes}
    assert by["orders"].evidence["inherited_from"] == "stock"
    assert by["orders"].evidence["explained_by"] == "stock"
    assert causes[0].entity == "stock"


def test_a_call_cycle_of_three_services_does_not_explain_the_one_whose_trouble_came_first() -> None:
    # web -> cart -> pricing -> web (pricing calls back for the session). pricing's errors
    # and latency came first, cart's 10 s later, web's 20 s later: cart's are pricing's and
    # web's are cart's, but pricing's are not web's, or all three were discounted and the
    # cause named as its own victim's victim.
    graph = ServiceGraph({("web", "cart"): EdgeStats(calls_current=50),
                          ("cart", "pricing"): EdgeStats(calls_current=50),
                          ("pricing", "web"): EdgeStats(calls_current=50)})
    logs = [_f(FindingKind.LOG_ANOMALY, "web", "new_error_template", 0.9, onset=120),
            _f(FindingKind.LOG_ANOMALY, "cart", "new_error_template", 0.9, onset=110),
            _f(FindingKind.LOG_ANOMALY, "pricing", "new_error_template", 0.9, onset=100),
            _f(FindingKind.LOG_ANOMALY, "mail", "new_error_template", 0.6, onset=105)]
    m = [_f(FindingKind.METRIC_ANOMALY, s, "robust_z", 0.9, onset=on, metric="latency_p99")
         for s, on in (("web", 120), ("cart", 110), ("pricing", 100))]
    causes = rank_root_causes(metric_findings=m, log_findings=logs, trace_findings=[], topology=graph,
                              alert_time=130.0)
    by = {c.entity: c for c in causes}
    assert by["web"].evidence["inherited_from"] == "cart" and by["cart"].evidence["inherited_from"] == "pricing"
    assert by["web"].evidence["explained_by"] == "cart" and by["cart"].evidence["explained_by"] == "pricing"
    assert by["pricing"].evidence["inherited_from"] is None and by["pricing"].evidence["explained_by"] is None
    assert causes[0].entity == "pricing"
