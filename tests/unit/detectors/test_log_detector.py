"""Log detector: templates against a normal window."""
from __future__ import annotations

import random

from detectors.logs import LogDetector, LogReference, LogState, LogWindow
from detectors.records import FindingKind, LogRecord

W0 = 1_000_000.0


def _normal(t0: float, seconds: int, svc: str = "inference", rng: random.Random | None = None) -> list[LogRecord]:
    rng = rng or random.Random(1)
    out = []
    for i in range(seconds):
        out.append(LogRecord(t0 + i, svc, f"INFO request id={rng.randint(1, 10**6)} served in {rng.randint(5, 90)} ms",
                             level="INFO"))
        if i % 60 == 0:
            out.append(LogRecord(t0 + i + 0.5, svc, f"WARN cache miss for key user:{rng.randint(1, 999)}",
                                 level="WARN"))
        out.append(LogRecord(t0 + i + 0.2, "gateway", f"INFO GET /predict 200 {rng.randint(5, 90)}ms", level="INFO"))
    return out


DET = LogDetector()


def _fit(records, spans=(), start=None, end=None) -> LogState:
    """A normal period's state; its bounds default to its first and last line."""
    ts = [r.ts for r in records]
    return DET.fit(LogReference(records, spans), min(ts) if start is None else start,
                   max(ts) if end is None else end)


def _score(base, cur, *, window_start, window_end, baseline_spans=(), current_spans=(), history_start=None):
    state = base if isinstance(base, LogState) else _fit(base, baseline_spans)
    return DET.score(state, LogWindow(cur, current_spans, history_start), window_start, window_end)


def _detect(base, cur, start, end):
    return _score(base, cur, window_start=start, window_end=end)


def test_quiet_window_gives_no_findings():
    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300, rng=random.Random(7))
    assert _detect(base, cur, W0 + 3600, W0 + 3900) == []


def test_new_error_template_is_found_for_its_service_with_samples():
    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300, rng=random.Random(7))
    cur += [LogRecord(W0 + 3700 + i, "inference", f"ERROR failed to load batch {i}: connection reset by peer",
                      level="ERROR") for i in range(8)]
    f = [x for x in _detect(base, cur, W0 + 3600, W0 + 3900) if x.statistic == "new_error_template"]
    assert len(f) == 1
    (x,) = f
    assert x.kind is FindingKind.LOG_ANOMALY and x.service == "inference"
    assert x.value == 8 and x.baseline == 0 and x.onset == W0 + 3700
    assert "connection reset" in x.evidence["samples"][0] and 0 < x.score <= 1


def test_cuda_oom_is_a_fatal_finding_even_when_rare():
    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300) + [LogRecord(W0 + 3650, "inference",
                                               "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")]
    f = [x for x in _detect(base, cur, W0 + 3600, W0 + 3900) if x.statistic == "fatal_cuda_oom"]
    assert len(f) == 1 and f[0].service == "inference" and f[0].score >= 0.8


def test_error_rate_rise_is_scaled_by_window_length():
    # 10 identical errors per 600 s in the baseline; the same rate in a 60 s window is normal,
    # the same count in that short window is a 10x rise.
    base = _normal(W0, 600) + [LogRecord(W0 + 50 * i, "inference", "ERROR upstream timeout after 30s", level="ERROR")
                               for i in range(10)]
    same_rate = [LogRecord(W0 + 3600 + 30, "inference", "ERROR upstream timeout after 30s", level="ERROR")]
    rise = [LogRecord(W0 + 3600 + i * 5, "inference", "ERROR upstream timeout after 30s", level="ERROR")
            for i in range(10)]
    lb = _fit(base, start=W0, end=W0 + 600)
    assert not [x for x in _score(lb, same_rate, window_start=W0 + 3600, window_end=W0 + 3660)
                if x.statistic == "error_template_rate"]
    hits = [x for x in _score(lb, rise, window_start=W0 + 3600, window_end=W0 + 3660)
            if x.statistic == "error_template_rate"]
    assert len(hits) == 1 and hits[0].value == 10 and hits[0].evidence["expected"] < 2


def test_oom_killed_without_level_is_found_and_levels_are_parsed_from_lines():
    base = _normal(W0, 300)
    cur = [LogRecord(W0 + 3600 + i, "trainer", line) for i, line in enumerate([
        "2024-01-01T00:00:00Z ERROR worker 3 exited with code 137",
        "2024-01-01T00:00:01Z ERROR worker 4 exited with code 137",
        "2024-01-01T00:00:02Z ERROR worker 5 exited with code 137",
        "container trainer terminated: reason=OOMKilled",
    ])]
    stats = {x.statistic for x in _detect(base, cur, W0 + 3600, W0 + 3700)}
    assert "fatal_oom_killed" in stats and "new_error_template" in stats


def _handler_runs(t0: float, n: int, *, stop_at: float | None = None, prefix: str = "r") -> tuple[list, list]:
    """One `handle` span per second; each writes 'loaded' and, until `stop_at`, 'priced [ids]'."""
    from detectors.records import Span

    spans, logs = [], []
    for i in range(n):
        t = t0 + i
        sid = f"{prefix}{i:015x}"
        spans.append(Span(f"{prefix}t{i:030x}", sid, None, "pricing", "handle", int(t * 1e9), int((t + 0.01) * 1e9)))
        logs.append(LogRecord(t, "pricing", f"INFO loaded route {i}", level="INFO", labels={"span_id": sid}))
        if stop_at is None or t < stop_at:
            ids = ", ".join(str(k) for k in range(1 + i % 4))  # a list whose length varies
            logs.append(LogRecord(t + 0.001, "pricing", f"INFO priced trips [{ids}]", level="INFO",
                                  labels={"span_id": sid}))
    return spans, logs


def test_a_log_line_that_stops_although_its_operation_still_runs_is_found():
    bs, bl = _handler_runs(W0, 300, prefix="b")
    # The window starts 60 s before the cut (alert times are imprecise): the line is still
    # there for a third of the window, yet it stopped for the last 120 runs.
    cs, cl = _handler_runs(W0 + 3600, 180, stop_at=W0 + 3660, prefix="c")
    f = [x for x in _score(bl, cl, window_start=W0 + 3600, window_end=W0 + 3780,
                                         baseline_spans=bs, current_spans=cs)
         if x.statistic == "vanished_template"]
    assert len(f) == 1, "one template for the list line, whatever the list length"
    (x,) = f
    assert x.service == "pricing" and "priced" in x.evidence["template"] and x.evidence["runs"] == 120
    assert x.onset == W0 + 3660 and x.score > 0.9


def test_the_same_runs_without_a_cut_give_no_vanished_template():
    bs, bl = _handler_runs(W0, 300, prefix="b")
    cs, cl = _handler_runs(W0 + 3600, 180, prefix="c")
    assert not [x for x in _score(bl, cl, window_start=W0 + 3600, window_end=W0 + 3780,
                                                baseline_spans=bs, current_spans=cs)
                if x.statistic == "vanished_template"]


def test_errors_already_present_before_the_alert_count_less_than_new_ones():
    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300, rng=random.Random(7))
    # "recurring" errors run through the recent history and the window; "fresh" ones start in the window.
    cur += [LogRecord(W0 + 3600 + 10 * i, "inference", "ERROR cache node unreachable", level="ERROR")
            for i in range(30)]
    cur += [LogRecord(W0 + 3800 + 5 * i, "gateway", "ERROR upstream returned 500", level="ERROR") for i in range(10)]
    f = _score(base, cur, window_start=W0 + 3750, window_end=W0 + 3900, history_start=W0 + 3600)
    by = {x.service: x for x in f if x.statistic in ("new_error_template", "error_template_rate")}
    assert by["gateway"].evidence["view"] == "fresh"
    assert by["inference"].evidence["view"] == "persistent"
    assert by["inference"].score < by["gateway"].score
    # Without the history both read as new errors of the window.
    plain = {x.service: x for x in _score(base, cur, window_start=W0 + 3750, window_end=W0 + 3900)
             if x.statistic == "new_error_template"}
    assert set(plain) == {"gateway", "inference"}


def _loop_runs(t0: float, n: int, *, cut_from: float | None = None, prefix: str = "q") -> list[LogRecord]:
    """One `query` span per second; it loops over 1-3 trips, writing 'rest tickets of trip X'
    then 'distance of trip X' for each. From `cut_from`, the second trip of a span loses its
    'distance' line (an exception caught inside the loop): the span still runs and still
    writes its first line for every trip."""
    logs = []
    for i in range(n):
        t = t0 + i
        sid = f"{prefix}{i:015x}"
        logs.append(LogRecord(t, "travel", f"INFO query trips from city{i % 7}", level="INFO",
                              labels={"span_id": sid}))
        for k in range(1 + i % 3):
            logs.append(LogRecord(t + 0.001 * k, "travel", f"INFO rest tickets of trip G{100 + k}: {i % 50}",
                                  level="INFO", labels={"span_id": sid}))
            if cut_from is None or t < cut_from or k != 1:
                logs.append(LogRecord(t + 0.001 * k + 0.0005, "travel",
                                      f"INFO distance of trip G{100 + k} is {k * 90} km",
                                      level="INFO", labels={"span_id": sid}))
    return logs


def test_a_line_that_stops_following_its_partner_in_some_spans_is_a_broken_sequence():
    base = _loop_runs(W0, 300, prefix="b")
    cur = _loop_runs(W0 + 3600, 180, cut_from=W0 + 3660, prefix="c")
    f = [x for x in _score(base, cur, window_start=W0 + 3600, window_end=W0 + 3780)
         if x.statistic == "broken_sequence"]
    assert len(f) == 1
    (x,) = f
    assert x.service == "travel" and "distance" in x.evidence["template"]
    assert "rest tickets" in x.evidence["after_template"]
    # Spans with 2 or 3 trips after the cut (two in three of the last 120 spans) are broken.
    assert x.evidence["broken_spans"] == 80 and x.evidence["baseline_broken_spans"] == 0
    assert x.onset >= W0 + 3660 and x.score > 0.9
    # Neither line vanished as a whole and no line is new: only the pairing shows the cut.
    assert not [y for y in _score(base, cur, window_start=W0 + 3600, window_end=W0 + 3780)
                if y.statistic in ("new_template", "new_error_template")]


def test_the_same_loop_without_a_cut_gives_no_broken_sequence():
    base = _loop_runs(W0, 300, prefix="b")
    cur = _loop_runs(W0 + 3600, 180, prefix="c")
    assert not [x for x in _score(base, cur, window_start=W0 + 3600, window_end=W0 + 3780)
                if x.statistic == "broken_sequence"]


def _branch_runs(t0: float, n: int, *, stop_at: float | None = None, every: int = 1, prefix: str = "r") -> tuple:
    """Like _handler_runs, but the 'priced' line is written in one run out of `every`."""
    from detectors.records import Span

    spans, logs = [], []
    for i in range(n):
        t = t0 + i
        sid = f"{prefix}{i:015x}"
        spans.append(Span(f"{prefix}t{i:030x}", sid, None, "pricing", "handle", int(t * 1e9), int((t + 0.01) * 1e9)))
        logs.append(LogRecord(t, "pricing", f"INFO loaded route {i}", level="INFO", labels={"span_id": sid}))
        if (stop_at is None or t < stop_at) and i % every == 0:
            logs.append(LogRecord(t + 0.001, "pricing", "INFO priced trips", level="INFO", labels={"span_id": sid}))
    return spans, logs


def test_a_vanished_line_on_a_branch_some_runs_take_counts_less_than_one_every_run_writes():
    def score(every: int, runs: int) -> float:
        bs, bl = _branch_runs(W0, 900, every=every, prefix="b")
        cs, cl = _branch_runs(W0 + 3600, runs, stop_at=W0 + 3600, every=every, prefix="c")
        f = [x for x in _score(bl, cl, window_start=W0 + 3600, window_end=W0 + 3600 + runs,
                                             baseline_spans=bs, current_spans=cs)
             if x.statistic == "vanished_template"]
        return f[0].score if f else 0.0
    # The same expected count of missing lines (40): written every run over 40 runs, or
    # every 4th run over 160 runs. The second may be a change of input mix.
    every_run, branch = score(1, 40), score(4, 160)
    assert every_run > 0.5 and 0 < branch < every_run * 0.6


def test_a_new_error_line_absent_from_a_short_normal_window_and_a_long_history_scores_higher():
    """The recent history is reference too: a line that neither 60 s of normal logs nor
    ten quiet minutes before the alert ever wrote is more surprising than one only the
    60 s never saw, so a thin normal period does not mute a new error that much."""
    base = _normal(W0, 60)
    history = _normal(W0 + 3000, 600, rng=random.Random(3))
    cur = _normal(W0 + 3600, 300, rng=random.Random(7))
    cur += [LogRecord(W0 + 3700 + i, "inference", f"ERROR failed to load batch {i}: connection reset by peer",
                      level="ERROR") for i in range(8)]

    def found(records, history_start):
        return {f.statistic: f for f in _score(base, records, window_start=W0 + 3600, window_end=W0 + 3900,
                                               history_start=history_start)}

    alone, with_history = found(cur, None), found(history + cur, W0 + 3000)
    assert "new_error_template" not in alone  # 8 lines against 2.5 expected from 60 s: not enough
    x = with_history["new_error_template"]
    assert x.evidence["expected"] < 0.3 and x.value == 8
    assert with_history["error_burst"].score > alone["error_burst"].score


def test_with_no_spans_in_the_normal_period_the_recent_history_counts_the_runs():
    """A normal period Tempo kept no traces of: its lines cannot be counted per run, but
    the case's recent history can (its spans are read with the window). The line that
    stops while the operation keeps running is found against the history's runs."""
    _, bl = _handler_runs(W0, 300, prefix="b")
    cs, cl = _handler_runs(W0 + 3500, 280, stop_at=W0 + 3660, prefix="c")
    found = [x for x in _score(bl, cl, window_start=W0 + 3600, window_end=W0 + 3780, current_spans=cs,
                               history_start=W0 + 3500) if x.statistic == "vanished_template"]
    (x,) = found
    assert x.service == "pricing" and "priced" in x.evidence["template"] and x.onset == W0 + 3660
    # Counted by the operation's runs, as with normal spans; before, only the service's
    # active seconds stood in (no operation named, ranking evidence only).
    assert x.evidence["operation"] == "handle" and x.evidence["runs"] == 120
    assert not x.evidence.get("ranking_only")


def test_a_binary_error_line_gives_findings_and_a_title_postgresql_can_store() -> None:
    # A service dumping binary (a protobuf payload, a core file) into its log: PostgreSQL's
    # text columns (the incident title) refuse NUL, so no finding may carry one.
    from correlators.causes import build_incident

    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300, rng=random.Random(7))
    cur += [LogRecord(W0 + 3700 + i, "inference", f"ERROR bad frame \x00\x00\x01\x02{i} from peer",
                      level="ERROR") for i in range(8)]
    found = _detect(base, cur, W0 + 3600, W0 + 3900)
    errors = [x for x in found if x.statistic == "new_error_template"]
    assert len(errors) == 1
    inc = build_incident("m", found, [], window_start=W0 + 3600, window_end=W0 + 3900)
    assert inc is not None and "log anomaly in inference" in inc.title
    texts = [inc.title, *(x.entity for x in found), *(x.message for x in found),
             *(str(x.evidence.get("template", "")) for x in found),
             *(s for x in found for s in x.evidence.get("samples", []))]
    assert not [t for t in texts if "\x00" in t]
    assert "bad frame" in errors[0].evidence["samples"][0]


def test_sample_lines_of_hundreds_of_templates_are_taken_in_one_pass(monkeypatch) -> None:
    # Each template's sample lines were cut by a Python function per template (hundreds
    # per Nezha case, 3-4 % of its CPU); the samples are the same, taken in one pass.
    import pandas as pd

    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
             "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
    line = "{0}_{1} {1}_{0} {0}{1} {1}{0} failed {2} " + "x" * 700
    cur = [LogRecord(W0 + 700 + k + j * 0.01, "inference", line.format(a, b, k), level="ERROR")
           for j, (a, b) in enumerate((a, b) for a in words for b in words if a != b) for k in range(4)]
    head, heads = pd.Series.head, []
    monkeypatch.setattr(pd.Series, "head", lambda self, n=5: heads.append(n) or head(self, n))
    findings = _detect(_normal(W0, 600), cur, W0 + 700, W0 + 760)
    (new,) = [f for f in findings if f.evidence.get("template", "").startswith("alpha_bravo ")]
    assert new.evidence["samples"] == [line.format("alpha", "bravo", k)[:600] for k in range(3)]
    assert len(heads) < 10  # the service's error burst; was one per template (380)


def test_broken_sequences_of_many_services_are_found_with_one_grouping_of_the_lines(monkeypatch) -> None:
    # The pairing check grouped each service's lines three times (and unstacked and
    # reindexed them): 5-8 % of a Nezha case's CPU over its ~40 services. The same pairs
    # are found from one pass over all services' lines.
    import pandas as pd

    from detectors.logs import detector

    services = [f"svc{i}" for i in range(6)]

    def runs(t0: float, n: int, prefix: str, cut_from: float | None = None) -> list[LogRecord]:
        out = []
        for s in services:
            for r in _loop_runs(t0, n, cut_from=cut_from, prefix=prefix + s):
                out.append(LogRecord(r.ts, s, r.line, level=r.level, labels=r.labels))
        return out

    calls, inside = [], [False]
    for cls in (pd.DataFrame, pd.Series):
        def counted(self, *a, _orig=cls.groupby, **k):
            if inside[0]:
                calls.append(1)
            return _orig(self, *a, **k)
        monkeypatch.setattr(cls, "groupby", counted)
    check = detector.broken_sequence_findings

    def watched(*a, **k):
        inside[0] = True
        try:
            return check(*a, **k)
        finally:
            inside[0] = False
    monkeypatch.setattr(detector, "broken_sequence_findings", watched)
    found = [x for x in _score(runs(W0, 300, "b"), runs(W0 + 3600, 180, "c", cut_from=W0 + 3660),
                               window_start=W0 + 3600, window_end=W0 + 3780) if x.statistic == "broken_sequence"]
    assert sorted(x.service for x in found) == services
    assert all(x.evidence["broken_spans"] == 80 and "distance" in x.evidence["template"] for x in found)
    assert len(calls) <= 2  # was 1 + 3 per service (19)
