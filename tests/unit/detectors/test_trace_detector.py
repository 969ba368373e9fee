"""Trace detector on synthetic call trees: self time, edge time, errors, calls."""
from __future__ import annotations

from dataclasses import replace

from detectors.records import Span
from detectors.traces import TraceDetector, TraceWindow
from detectors.traces.params import TraceParams
from tests.synthetic_traces import synthetic_traces

MS = 1_000_000
_traces = synthetic_traces


BASE = _traces(200, 0.0)
DET = TraceDetector()
STATE = DET.fit(BASE, 0.0, 300.0)


def _assess(cur, start, end, history_start=None):
    report = DET.assess(STATE, TraceWindow(cur, history_start), start, end)
    return report.findings, report.graph


def _run(cur, start=10_000.0, end=10_300.0):
    return _assess(cur, start, end)


def test_normal_traffic_gives_no_findings_and_a_graph():
    findings, graph = _run(_traces(200, 10_000.0, seed=3))
    assert findings == []
    assert ("api", "preprocess") in graph.edges and graph.callees("api") == {"preprocess"}
    e = graph.edges[("api", "preprocess")]
    assert 1.0 < e.edge_ms_baseline < 3.0 and 45 < e.callee_ms_current < 55


def test_slow_callee_is_blamed_on_self_time_not_the_waiting_caller():
    findings, _ = _run(_traces(200, 10_000.0, pre_ms=300, seed=3))
    self_time = [f for f in findings if f.statistic == "self_time_ms_p50"]
    assert {f.service for f in self_time} == {"preprocess"}
    (f,) = self_time
    assert 270 < f.value < 330 and 45 < f.baseline < 55 and f.evidence["trace_ids"]


def test_network_delay_shows_on_the_edge():
    findings, graph = _run(_traces(200, 10_000.0, edge_ms=500, seed=3))
    edge = [f for f in findings if f.statistic == "edge_time_ms_p50"]
    assert len(edge) == 1 and edge[0].evidence["caller"] == "api" and edge[0].evidence["callee"] == "preprocess"
    assert edge[0].evidence["reference"] == "this pair" and edge[0].evidence["ranking_only"] is False
    assert not [f for f in findings if f.statistic == "self_time_ms_p50"]
    assert graph.edges[("api", "preprocess")].edge_ms_current > 400


def test_errors_are_traced_to_the_deepest_failing_span():
    findings, _ = _run(_traces(200, 10_000.0, error=True, seed=3))
    origin = [f for f in findings if f.statistic == "error_origin_rate"]
    assert [f.service for f in origin] == ["preprocess"]


def test_vanished_calls_point_at_the_parent():
    findings, _ = _run(_traces(200, 10_000.0, call_cache=False, seed=3))
    gone = [f for f in findings if f.statistic == "calls_vanished"]
    assert len(gone) == 1 and gone[0].service == "api" and gone[0].value == 0
    assert gone[0].evidence["child_operation"] == "cache.get"


def test_spans_outside_the_window_are_ignored():
    findings, _ = _run(_traces(200, 20_000.0, pre_ms=300, seed=3))
    assert findings == []


def test_a_slowdown_already_there_before_the_window_counts_less():
    slow_since_before = _traces(300, 9_900.0, pre_ms=300, seed=3)
    fresh, _ = _assess(slow_since_before, 10_000.0, 10_200.0)
    hist, _ = _assess(slow_since_before, 10_000.0, 10_200.0, history_start=9_900.0)
    (a,) = [f for f in fresh if f.statistic == "self_time_ms_p50"]
    (b,) = [f for f in hist if f.statistic == "self_time_ms_p50"]
    assert a.service == b.service == "preprocess"
    # The recent history joins the reference, so the same slowdown is less surprising.
    assert b.score < a.score


def test_seconds_of_delay_on_a_few_calls_outweigh_a_small_shift_on_many():
    """A network delay on a pod few requests reach (most of its 10 calls 1.5 s late, two
    spared) must outrank a 3x shift of a busy service's self time: the ranking reads the
    scores, and the old reading (t-test only, effect saturating at 2x) put it below."""
    few = TraceDetector()
    state = few.fit(_traces(8, 0.0, edge_ms=3, seed=1), 0.0, 300.0)
    delayed = _traces(8, 10_000.0, edge_ms=1500, seed=2) + _traces(2, 10_010.0, edge_ms=3, seed=3)
    (edge,) = few.assess(state, TraceWindow(delayed), 10_000.0, 10_300.0).findings
    busy = few.assess(STATE, TraceWindow(_traces(150, 10_000.0, pre_ms=150, seed=4)), 10_000.0, 10_300.0)
    (shift,) = busy.findings
    assert edge.statistic == "edge_time_ms_p50" and shift.statistic == "self_time_ms_p50"
    assert edge.score > 0.6 and shift.score < 0.5 and edge.score > shift.score


def _renamed(spans, names):
    return [replace(s, service=names.get(s.service, s.service)) for s in spans]


def test_a_delay_on_a_pair_the_reference_never_saw_is_judged_against_pooled_calls():
    """A caller that never called this pod in the reference (a short normal period, a
    quiet caller): its delayed calls are judged against the pod's other incoming calls,
    and when nobody called the pod, against every call at half weight; before, no
    evidence at all, so a delayed pod few requests reach ranked among the unaffected."""
    new_caller = _renamed(_traces(30, 10_000.0, edge_ms=800, seed=3), {"api": "batch"})
    findings, _ = _run(new_caller)
    (into,) = [f for f in findings if f.statistic == "edge_time_ms_p50"]
    assert into.evidence["reference"] == "calls into preprocess" and into.service == "preprocess"
    assert "fewer than 5" in into.message and into.score > 0.5 and into.evidence["ranking_only"] is True

    new_pod = _renamed(_traces(30, 10_000.0, edge_ms=800, seed=3), {"api": "batch", "preprocess": "scorer"})
    findings, _ = _run(new_pod)
    (pooled,) = [f for f in findings if f.statistic == "edge_time_ms_p50"]
    assert pooled.evidence["reference"] == "all calls" and pooled.service == "scorer"
    # 800 ms is beyond every call of the reference (about 2 ms each): no pair's normal
    # network time could account for it, so the rough stand-in counts in full.
    assert pooled.score == into.score

    off = TraceDetector(TraceParams(pooled_weight=0.0))
    report = off.assess(off.fit(BASE, 0.0, 300.0), TraceWindow(new_pod), 10_000.0, 10_300.0)
    assert not [f for f in report.findings if f.statistic == "edge_time_ms_p50"]


def test_a_pooled_reference_with_slower_pairs_in_it_counts_half():
    """The reference also holds a pair whose calls normally take 1.5 s (another region):
    800 ms on a pair it never saw is slower than most calls but not than every one, and
    that pair's own normal time might be as slow, so the finding counts `pooled_weight`."""
    far = _renamed(_traces(40, 400.0, edge_ms=1500, seed=5), {"api": "edge", "preprocess": "remote"})
    det = TraceDetector()
    state = det.fit(BASE + far, 0.0, 600.0)
    new_pod = _renamed(_traces(30, 10_000.0, edge_ms=800, seed=3), {"api": "batch", "preprocess": "scorer"})
    (within,) = [f for f in det.assess(state, TraceWindow(new_pod), 10_000.0, 10_300.0).findings
                 if f.statistic == "edge_time_ms_p50"]
    slower = _renamed(_traces(30, 10_000.0, edge_ms=5000, seed=3), {"api": "batch", "preprocess": "scorer"})
    (beyond,) = [f for f in det.assess(state, TraceWindow(slower), 10_000.0, 10_300.0).findings
                 if f.statistic == "edge_time_ms_p50"]
    assert within.evidence["reference"] == beyond.evidence["reference"] == "all calls"
    full = TraceDetector(TraceParams(pooled_weight=1.0))
    (unweighted,) = [f for f in full.assess(full.fit(BASE + far, 0.0, 600.0), TraceWindow(new_pod),
                                            10_000.0, 10_300.0).findings if f.statistic == "edge_time_ms_p50"]
    assert within.score == 0.5 * unweighted.score > 0
    assert beyond.score > 2 * within.score


def test_normal_calls_of_a_new_pair_give_no_edge_finding():
    findings, _ = _run(_renamed(_traces(200, 10_000.0, seed=3), {"api": "batch"}))
    assert not [f for f in findings if f.statistic == "edge_time_ms_p50"]


def test_a_pair_seen_a_few_times_is_judged_on_its_callee_but_is_not_new():
    """3 reference calls of its own: too few to judge it alone, so the callee's incoming
    calls stand in; but the baseline did see it, so it is not a new dependency (the alert
    policy warns on it as on any edge)."""
    det = TraceDetector()
    state = det.fit(BASE + _renamed(_traces(3, 400.0, seed=7), {"api": "batch"}), 0.0, 600.0)
    delayed = _renamed(_traces(30, 10_000.0, edge_ms=800, seed=3), {"api": "batch"})
    (edge,) = [f for f in det.assess(state, TraceWindow(delayed), 10_000.0, 10_300.0).findings
               if f.statistic == "edge_time_ms_p50"]
    assert edge.evidence["reference"] == "calls into preprocess" and edge.evidence["ranking_only"] is False


EMPTY = DET.fit([], 0.0, 300.0)  # a normal period Tempo kept no traces of


def _delayed_pod(edge_ms: float) -> list:
    return _renamed(_traces(30, 10_000.0, edge_ms=edge_ms, seed=4), {"api": "batch", "preprocess": "scorer"})


def _system(t0: float, n: int = 200) -> list:
    """Two healthy pairs, api -> preprocess and web -> search: the window's other calls."""
    return _traces(n, t0, seed=3) + _renamed(_traces(n // 2, t0, seed=8), {"api": "web", "preprocess": "search"})


def _edges(report) -> list:
    return [f for f in report.findings if f.statistic == "edge_time_ms_p50"]


def test_with_no_reference_calls_a_delayed_pair_is_judged_against_the_windows_other_pairs():
    """Before, an empty baseline judged no edge at all, and a delayed pod ranked among the
    unaffected (25th and 30th on unseen data). The calls between other services in the
    same window show what a call takes now: 800 ms against their 2 ms is a delay."""
    window = TraceWindow(_system(10_000.0) + _delayed_pod(800))
    (edge,) = _edges(DET.assess(EMPTY, window, 10_000.0, 10_300.0))
    assert edge.service == "scorer" and edge.evidence["reference"] == "calls between other services in the window"
    assert "the baseline had fewer than 5 calls" in edge.message
    assert edge.evidence["ranking_only"] is True  # a stand-in reference: ranking evidence, not an alert
    assert edge.score > 0.5  # beyond every one of their calls: counted in full


def test_with_no_reference_calls_a_pair_a_few_times_slower_than_the_others_is_not_news():
    """Pairs differ in their own network time (a proxy, another zone): three times the
    others' median is within what healthy pairs show, so it gives no finding."""
    window = TraceWindow(_system(10_000.0) + _delayed_pod(6))
    assert _edges(DET.assess(EMPTY, window, 10_000.0, 10_300.0)) == []


def test_a_tiny_reference_with_no_other_pairs_in_the_window_still_judges_against_its_calls():
    """Three reference calls are too few to judge by, and with no other pair in the window
    there is nothing to stand in: the pair is judged against those calls, at half weight
    (a pool of three is easily beaten, so being beyond all of it proves little)."""
    tiny = DET.fit(_traces(3, 0.0), 0.0, 300.0)
    window = TraceWindow(_delayed_pod(800))
    (edge,) = _edges(DET.assess(tiny, window, 10_000.0, 10_300.0))
    assert edge.evidence["reference"] == "all calls"
    full = TraceDetector(TraceParams(pooled_weight=1.0))
    (unweighted,) = _edges(full.assess(full.fit(_traces(3, 0.0), 0.0, 300.0), window, 10_000.0, 10_300.0))
    assert edge.score == 0.5 * unweighted.score > 0


def test_a_pair_slow_since_before_the_alert_is_not_judged_against_the_other_pairs():
    """No normal calls, and the pair was as slow in the recent history as it is now: the
    history says nothing changed, and the other pairs are no yardstick for how long this
    one has always taken, so no edge finding (the second, persistent reading never uses them)."""
    history = _system(9_600.0, 100) + _renamed(_traces(30, 9_600.0, edge_ms=800, seed=6),
                                               {"api": "batch", "preprocess": "scorer"})
    window = TraceWindow(history + _system(10_000.0) + _delayed_pod(800), history_start=9_600.0)
    assert _edges(DET.assess(EMPTY, window, 10_000.0, 10_300.0)) == []


def test_a_failed_call_to_a_callee_that_sent_no_span_points_at_the_callee_it_names() -> None:
    # preprocess is down: api's client span fails with no server span under it, so the
    # deepest failing span is api's. The span names its peer (OpenTelemetry's
    # server.address / peer.service): the ranking must see the call to preprocess failed,
    # not only api failing (before, preprocess had no evidence at all).
    from correlators.rca import RcaContext, rank_root_causes

    cur = []
    for s in _traces(200, 10_000.0, seed=3):
        if s.service == "preprocess":
            continue  # no span from a service that is down
        if s.operation == "HTTP POST":
            s = replace(s, error=True, attributes={"server.address": "preprocess", "server.port": 8080})
        elif s.operation == "POST /predict":
            s = replace(s, error=True)
        cur.append(s)
    findings, _ = _run(cur)
    origin = [f for f in findings if f.statistic == "error_origin_rate"]
    assert [f.service for f in origin] == ["api"]
    assert any("preprocess" in str(x) for x in origin[0].evidence.get("samples", []))
    causes = rank_root_causes(metric_findings=[], log_findings=[], trace_findings=findings, topology=None,
                              alert_time=10_300.0, context=RcaContext(candidates=["api", "preprocess"]))
    by = {c.entity: c for c in causes}
    assert by["preprocess"].score > 0 and by["api"].score < origin[0].score


def test_a_span_that_names_itself_as_parent_is_a_root_not_a_call_nor_zero_self_time() -> None:
    # A broken instrumentation (or a bad id conversion) can send a span whose parentSpanId
    # is its own spanId. It must read as a root: not as a call of itself (a "started
    # calling" finding on every window) nor as a child eating its own time (self time 0).
    def self_parented(spans):
        return [replace(s, parent_id=s.span_id) if s.parent_id is None else s for s in spans]

    state = DET.fit(self_parented(_traces(200, 0.0)), 0.0, 300.0)
    ref = state.frame
    roots = ref[ref["operation"] == "POST /predict"]
    assert roots["parent_service"].isna().all() and (roots["self_ms"] > 3.0).all()
    assert not roots["error_origin"].any()
    cur = self_parented(_traces(200, 10_000.0, seed=3))
    assert DET.score(STATE, TraceWindow(cur), 10_000.0, 10_300.0) == []
    failing = self_parented([replace(s, error=True) if s.operation == "POST /predict" else s
                             for s in _traces(200, 10_000.0, seed=3)])
    origin = [f for f in DET.score(STATE, TraceWindow(failing), 10_000.0, 10_300.0)
              if f.statistic == "error_origin_rate"]
    assert [f.service for f in origin] == ["api"]


def test_a_service_gone_from_the_windows_traces_is_a_finding_on_it() -> None:
    # preprocess crashed: api falls back (no error) and its client span calls nothing.
    # Before, the only evidence was api's "stopped calling" finding: preprocess, the
    # service that is down, had none at all, and ranked as free of anomalies.
    cur = [s for s in _traces(200, 10_000.0, seed=3) if s.service != "preprocess"]
    findings, _ = _run(cur)
    gone = [f for f in findings if f.statistic == "service_vanished"]
    assert [f.service for f in gone] == ["preprocess"] and gone[0].value == 0 and gone[0].score > 0.5
    assert "no spans" in gone[0].message and gone[0].baseline > 100
    # It places the cause; it raises no alert by itself (a service scaled to zero is gone too).
    assert gone[0].evidence["ranking_only"] is True
    # A service that was rare in the reference is not news when a window lacks it.
    rare = _renamed(_traces(3, 0.0, seed=5), {"preprocess": "batch"})
    state = DET.fit(BASE + rare, 0.0, 300.0)
    assert not [f for f in DET.score(state, TraceWindow(_traces(200, 10_000.0, seed=3)), 10_000.0, 10_300.0)
                if f.statistic == "service_vanished"]


def test_a_crashed_callee_ranks_above_the_caller_that_stopped_calling_it() -> None:
    from correlators.rca import RcaContext, rank_root_causes

    cur = [s for s in _traces(200, 10_000.0, seed=3) if s.service != "preprocess"]
    findings, graph = _run(cur)
    causes = rank_root_causes(metric_findings=[], log_findings=[], trace_findings=findings, topology=graph,
                              alert_time=10_300.0, context=RcaContext(candidates=["api", "preprocess"]))
    assert causes[0].entity == "preprocess" and "no spans" in causes[0].explanation


def test_a_service_called_in_a_few_traces_with_many_inner_spans_is_not_gone_when_a_window_misses_it() -> None:
    # batch is called in 3 reference traces, each call making 40 inner spans: 120 of its
    # spans, but 3 calls. A window whose sample of traces has no such call is no crash.
    from detectors.records import Span

    extra = []
    for i in range(3):
        tid, t = f"bb{i:030x}", int((50 + i) * 1e9)
        extra += [Span(tid, f"{i:012x}a001", None, "api", "POST /batch", t, t + 90 * MS),
                  Span(tid, f"{i:012x}a002", f"{i:012x}a001", "api", "HTTP POST", t + MS, t + 85 * MS),
                  Span(tid, f"{i:012x}a003", f"{i:012x}a002", "batch", "run", t + 2 * MS, t + 84 * MS)]
        extra += [Span(tid, f"{i:012x}b{k:03x}", f"{i:012x}a003", "batch", "step", t + (2 + 2 * k) * MS,
                       t + (3 + 2 * k) * MS) for k in range(40)]
    state = DET.fit(BASE + extra, 0.0, 300.0)
    found = DET.score(state, TraceWindow(_traces(200, 10_000.0, seed=3)), 10_000.0, 10_300.0)
    assert not [f for f in found if f.statistic == "service_vanished"]


def _sync_runs(t0: float, n: int, puts_in_first: int, tag: str) -> list:
    """`n` runs of api "POST /sync"; the first calls store's "put" `puts_in_first` times
    (a batch flushed in one go), the others call nothing."""
    from detectors.records import Span

    out = []
    for i in range(n):
        tid, t = f"{tag}{i:030x}", int((t0 + 20 + i) * 1e9)
        out.append(Span(tid, f"{i:012x}c001", None, "api", "POST /sync", t, t + 90 * MS))
        if i == 0:
            for k in range(puts_in_first):
                out += [Span(tid, f"{i:012x}d{k:03x}", f"{i:012x}c001", "api", "HTTP PUT", t + MS, t + 2 * MS),
                        Span(tid, f"{i:012x}e{k:03x}", f"{i:012x}d{k:03x}", "store", "put", t + MS, t + 2 * MS)]
    return out


def test_calls_made_in_one_burst_are_not_read_as_stopped_when_a_window_lacks_the_burst() -> None:
    # In the reference, 1 of 10 sync runs flushed 60 puts; the window's 10 runs flushed none,
    # as 9 of 10 reference runs did. Counted as 60 independent calls, 0 read as "stopped".
    state = DET.fit(BASE + _sync_runs(0.0, 10, 60, "aa"), 0.0, 300.0)
    cur = _traces(200, 10_000.0, seed=3) + _sync_runs(10_000.0, 10, 0, "ab")
    found = DET.score(state, TraceWindow(cur), 10_000.0, 10_300.0)
    assert not [f.message for f in found if f.statistic in ("calls_vanished", "service_vanished")]


def test_calls_made_steadily_that_stop_are_still_found() -> None:
    state = DET.fit(BASE + [s for i in range(10) for s in _sync_runs(float(i), 1, 6, f"a{i:x}")], 0.0, 300.0)
    cur = _traces(200, 10_000.0, seed=3) + _sync_runs(10_000.0, 10, 0, "ab")
    found = DET.score(state, TraceWindow(cur), 10_000.0, 10_300.0)
    assert [f.evidence["child_operation"] for f in found if f.statistic == "calls_vanished"] == ["HTTP PUT"]


def test_a_trace_state_stored_before_calls_were_grouped_by_run_still_loads_and_judges() -> None:
    from detectors.traces.detector import TraceState

    old = STATE.to_dict()
    old["spans"]["columns"] = {k: v for k, v in old["spans"]["columns"].items() if k not in ("run", "trace")}
    state = TraceState.from_dict(old)  # refitted instead, it would learn from an incident's window
    assert TraceState.from_dict(STATE.to_dict()).frame["run"].notna().any()
    found = DET.score(state, TraceWindow(_traces(200, 10_000.0, call_cache=False, seed=3)), 10_000.0, 10_300.0)
    assert [f.evidence["child_operation"] for f in found if f.statistic == "calls_vanished"] == ["cache.get"]


def test_the_historys_runs_are_not_merged_with_the_references_runs_of_the_same_number() -> None:
    # The history's spans number their runs from 0 as the reference's do: merged, two runs
    # of 6 calls read as one of 12, a burst, and a stop was discounted.
    from detectors.traces.detector import _stacked
    from detectors.traces.spans import prepare, span_frame

    state = DET.fit([s for i in range(10) for s in _sync_runs(float(i * 10), 1, 6, f"a{i:x}")], 0.0, 300.0)
    recent = prepare(span_frame([s for i in range(10) for s in _sync_runs(9_700.0 + i * 10, 1, 6, f"b{i:x}")]))
    both = _stacked(state.frame, recent)
    runs = both[both["operation"] == "HTTP PUT"].groupby("run").size()
    assert len(runs) == 20 and set(runs) == {6}
    assert both["trace"].nunique() == 20


def _count_group_slices(monkeypatch) -> list:
    """A list that grows by one for each frame pandas cuts out of a table for a group."""
    import pandas.core.groupby.ops as gops

    split = gops.DataSplitter.__iter__
    slices: list = []

    def counted(self):
        for part in split(self):
            slices.append(1)
            yield part

    monkeypatch.setattr(gops.DataSplitter, "__iter__", counted)
    return slices


def _operations(t0: float, ops: int, runs: int) -> list:
    """A gateway with `ops` operations, each run `runs` times, each run querying a database."""
    out = []
    for i in range(ops):
        for r in range(runs):
            tid, start = f"t{t0:.0f}-{i}-{r}", int((t0 + (i * runs + r) * 0.01) * 1e9)
            out += [Span(tid, "a", None, "gateway", f"GET /item/{i}", start, start + 30 * MS, pod="gateway-0"),
                    Span(tid, "b", "a", "gateway", "SELECT", start + MS, start + 21 * MS, pod="gateway-0"),
                    Span(tid, "c", "b", "db", "query", start + 2 * MS, start + 20 * MS, pod="db-0")]
    return out


def test_a_service_with_hundreds_of_operations_is_not_split_into_a_table_per_operation(monkeypatch) -> None:
    # Slicing the span table once per (service, operation) group, for the reference and
    # the window, in each reading, was a third of a Nezha case's trace time (hundreds of
    # operations); the checks read each group's times from one array instead.
    slices = _count_group_slices(monkeypatch)
    state = DET.fit(_operations(0.0, 300, 6), 0.0, 600.0)
    report = DET.assess(state, TraceWindow(_operations(1000.0, 300, 6)), 1000.0, 1100.0)
    assert report.findings == [] and ("gateway", "db") in report.graph.edges
    assert len(slices) < 20  # the graph's few edges; was 609 (a table per operation, reference and window)


def _fan_out(t0: float, callees: int, runs: int) -> list:
    """A gateway calling each of `callees` services `runs` times (client span, then the callee's)."""
    out = []
    for i in range(callees):
        for r in range(runs):
            tid, start = f"f{t0:.0f}-{i}-{r}", int((t0 + (i * runs + r) * 0.01) * 1e9)
            out += [Span(tid, "a", None, "gateway", "GET /", start, start + 30 * MS, pod="gateway-0"),
                    Span(tid, "b", "a", "gateway", f"call svc{i}", start + MS, start + 21 * MS, pod="gateway-0"),
                    Span(tid, "c", "b", f"svc{i}", "serve", start + 2 * MS, start + 20 * MS, pod=f"svc{i}-0")]
    return out


def test_the_graph_of_a_gateway_calling_hundreds_of_services_is_built_without_a_table_per_edge(monkeypatch) -> None:
    # The service graph sliced the span table once per edge, for the calls and again for
    # the edge times, in the reference and the window; it now aggregates each in one pass.
    slices = _count_group_slices(monkeypatch)
    state = DET.fit(_fan_out(0.0, 200, 6), 0.0, 600.0)
    graph = DET.assess(state, TraceWindow(_fan_out(1000.0, 200, 6)), 1000.0, 1100.0).graph
    e = graph.edges[("gateway", "svc7")]
    assert (e.calls_baseline, e.calls_current) == (6, 6) and e.callee_ms_current == 18.0 and e.edge_ms_baseline == 2.0
    assert len(graph.edges) == 200 and len(slices) < 10  # was 800: each edge, twice, in both tables


def test_the_medians_of_hundreds_of_operations_are_taken_without_a_numpy_median_call_each(monkeypatch) -> None:
    # Two np.median calls per tested group (~760 a Nezha case) cost 2.6 % of a case in
    # numpy's own overhead on small arrays; the same medians come from one sort per array.
    import numpy as np

    calls: list = []
    median = np.median
    monkeypatch.setattr(np, "median", lambda *a, **k: calls.append(1) or median(*a, **k))
    state = DET.fit(_operations(0.0, 300, 6), 0.0, 600.0)
    slow = _operations(1000.0, 300, 6)
    slow = [replace(s, end_ns=s.end_ns + 40 * MS) if s.operation == "GET /item/7" else s for s in slow]
    report = DET.assess(state, TraceWindow(slow), 1000.0, 1100.0)
    (f,) = report.findings
    assert f.entity == "gateway: GET /item/7" and f.value == 50.0 and f.baseline == 10.0
    assert len(calls) < 10  # was 604: two per (service, operation) and per edge


def test_the_sorted_median_is_numpys_to_the_bit() -> None:
    import math
    import warnings

    import numpy as np

    from detectors.numbers import median

    rng = np.random.default_rng(5)
    arrays = [rng.lognormal(3, 2, n) for n in range(1, 60)] + [rng.integers(0, 5, n) for n in range(1, 30)]
    arrays += [np.round(rng.normal(0, 1, n), 1) for n in (2, 3, 10, 11)] + [np.array([1e308, 1e308, 1.0])]
    for x in arrays:
        assert median(x) == float(np.median(x)), x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in (np.array([]), np.array([1.0, np.nan, 2.0]), np.array([np.nan])):
            assert math.isnan(median(x)) and math.isnan(float(np.median(x)))
