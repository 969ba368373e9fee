"""Trace anomalies: where time is added, where errors start, which calls changed.

Fit on spans of a normal window, score the spans of the current window.

- Self (exclusive) time: a span's duration minus the time of its children. A caller
  that waits on a slow callee keeps its self time; only the callee's grows. Compared
  per (service, operation) with a Welch t-test on log times and the ratio of medians.
- Edge (network) time: a span whose children run in another service is the caller's
  client span; its self time is time on the wire and in the callee's queue, so it is
  measured per edge caller -> callee and never counted as the caller's own work.
  A network fault on one pod slows every edge into it; the correlator uses the graph
  to see which endpoint the slowed edges share.
- Error status: error spans whose children did not fail are where an error starts
  (the deepest erroring span); their rate per service is compared with the baseline.
- Call structure: per parent (service, operation), how many child calls of each kind
  it makes per run. Calls that stopped (an early return or exception) or appeared (a
  retry loop, a fallback) point at the parent whose code path changed.

The service graph (edges with call counts and median edge/callee times, baseline and
current) is returned for the correlator.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from detectors.records import Direction, Finding, FindingKind, Span


# Weight of a finding that was already there before the alert (see detect_trace_anomalies).
PERSISTENT_WEIGHT = 0.5


@dataclass(frozen=True)
class TraceDetectorParams:
    min_spans: int = 5  # fewer current spans of an operation/edge than this is never a finding
    min_ratio: float = 1.5  # median self/edge time must grow by this factor
    min_added_ms: float = 1.0  # ... and by at least this much
    min_surprise: float = 2.0  # -log10 p after correcting for the number of tests
    vanish_min_expected: float = 5.0
    vanish_max_ratio: float = 0.2
    appear_min_count: int = 5


@dataclass
class EdgeStats:
    calls_baseline: int = 0
    calls_current: int = 0
    edge_ms_baseline: float | None = None  # median client-span self time (network + queue)
    edge_ms_current: float | None = None
    callee_ms_baseline: float | None = None  # median duration of the callee's server span
    callee_ms_current: float | None = None


@dataclass
class ServiceGraph:
    """Caller -> callee edges seen in traces, with their latencies."""

    edges: dict[tuple[str, str], EdgeStats] = field(default_factory=dict)

    @property
    def services(self) -> set[str]:
        return {s for e in self.edges for s in e}

    def callees(self, service: str) -> set[str]:
        return {b for a, b in self.edges if a == service and b != service}

    def callers(self, service: str) -> set[str]:
        return {a for a, b in self.edges if b == service and a != service}

    def to_dict(self) -> dict:
        return {f"{a}->{b}": vars(e) for (a, b), e in self.edges.items()}


@dataclass
class TraceBaseline:
    frame: pd.DataFrame  # one row per span with self/edge columns, see _prepare
    spans: Sequence[Span] = ()


def _frame(spans: Sequence[Span]) -> pd.DataFrame:
    n = len(spans)
    return pd.DataFrame({
        "trace_id": [s.trace_id for s in spans],
        "span_id": [s.span_id for s in spans],
        "parent_id": [s.parent_id for s in spans],
        "service": [s.service for s in spans],
        "operation": [s.operation for s in spans],
        "start_ns": np.fromiter((s.start_ns for s in spans), np.int64, n),
        "end_ns": np.fromiter((s.end_ns for s in spans), np.int64, n),
        "error": np.fromiter((s.error for s in spans), bool, n),
    })


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Adds self time, the parent's service/operation, and client-span (edge) marks."""
    df = df.copy()
    df["dur_ms"] = (df["end_ns"] - df["start_ns"]).clip(lower=0) / 1e6
    key = df["trace_id"] + ":" + df["span_id"]
    pkey = df["trace_id"] + ":" + df["parent_id"].fillna("")
    has_parent = df["parent_id"].notna().to_numpy()
    child_sum = df.loc[has_parent].groupby(pkey[has_parent])["dur_ms"].sum()
    df["self_ms"] = (df["dur_ms"] - key.map(child_sum).fillna(0.0)).clip(lower=0.0)
    idx = pd.Series(np.arange(len(df)), index=key.to_numpy())
    idx = idx[~idx.index.duplicated()]
    ppos = pkey.map(idx)
    ok = ppos.notna().to_numpy()
    pp = ppos[ok].astype(int).to_numpy()
    for col in ("service", "operation"):
        vals = np.full(len(df), None, dtype=object)
        vals[ok] = df[col].to_numpy()[pp]
        df["parent_" + col] = vals
    remote = ok & (df["parent_service"].to_numpy() != df["service"].to_numpy())
    # The parent of a remote child is the caller's client span: mark it as an edge.
    callee = pd.Series(df["service"].to_numpy()[remote], index=pkey[remote].to_numpy())
    callee = callee[~callee.index.duplicated()]
    df["callee"] = key.map(callee)
    df["is_client"] = df["callee"].notna()
    df["remote_child"] = remote
    # Errors that start here: the span failed and none of its children did.
    err_child = df.loc[has_parent & df["error"].to_numpy()].groupby(pkey[has_parent & df["error"].to_numpy()]).size()
    df["error_origin"] = df["error"] & ~key.isin(err_child.index)
    return df


def fit_trace_baseline(spans: Sequence[Span]) -> TraceBaseline:
    return TraceBaseline(_prepare(_frame(spans)), spans)


def _surprise_slower(b: np.ndarray, c: np.ndarray) -> float:
    """-log10 p of a one-sided Welch t-test on log times: latency is roughly log-normal,
    and unlike a rank test this lets a 100x shift on a few calls count as strong evidence."""
    if len(b) < 2 or len(c) < 2:
        return 0.0
    lb, lc = np.log(b + 0.1), np.log(c + 0.1)
    if np.ptp(lb) == 0 and np.ptp(lc) == 0:
        return 0.0
    with np.errstate(all="ignore"):
        p = stats.ttest_ind(lc, lb, equal_var=False, alternative="greater").pvalue
    if not np.isfinite(p):
        return 0.0
    return float(-math.log10(max(p, 1e-300)))


def _score(surprise: float, n_tests: int, ratio: float, scale: float = 4.0) -> float:
    corrected = surprise - math.log10(max(n_tests, 1))
    if corrected <= 0 or ratio <= 1:
        return 0.0
    sig = 1.0 - math.exp(-corrected / scale)
    eff = 1.0 - math.exp(-math.log2(ratio))
    return float(sig * eff)


def detect_trace_anomalies(
    baseline: Sequence[Span] | TraceBaseline,
    current: Sequence[Span],
    *,
    window_start: float,
    window_end: float,
    params: TraceDetectorParams = TraceDetectorParams(),
    history_start: float | None = None,
) -> tuple[list[Finding], ServiceGraph]:
    """TRACE_ANOMALY findings (service set) for spans starting in the window, and the graph.

    `history_start` (optional): spans of `current` starting from this time up to
    `window_start` are recent history. The window is then tested against normal +
    history (a drift that was already there before the alert, such as a slow table
    or a busy dependency, is not news), and history + window against normal at
    `PERSISTENT_WEIGHT`; per finding the stronger reading is kept.
    """
    if window_end <= window_start:
        raise ValueError(f"window_end ({window_end}) must be after window_start ({window_start})")
    b = baseline.frame if isinstance(baseline, TraceBaseline) else _prepare(_frame(baseline))
    if not current:
        return [], _graph(b, b.iloc[:0])
    c = _prepare(_frame(current))
    start_s = c["start_ns"].to_numpy() / 1e9
    recent = c.iloc[:0]
    if history_start is not None:
        recent = c[(start_s >= history_start) & (start_s < window_start)]
    c = c[(start_s >= window_start) & (start_s <= window_end)]
    fresh_b = pd.concat([b, recent], ignore_index=True) if len(recent) else b
    graph = _graph(fresh_b, c)
    findings = _detect_all(fresh_b, c, window_start, window_end, params)
    if len(recent):
        findings = [replace(f, evidence={**f.evidence, "view": "fresh"}) for f in findings]
        # Read a second way: history + window against normal only, at half weight. What
        # already differed from normal before the alert is less likely to be its cause
        # than what changed at it, but still counts when nothing else changed.
        hist_start = float(recent["start_ns"].min() / 1e9)
        best = {(f.statistic, f.entity): f for f in findings}
        for f in _detect_all(b, pd.concat([recent, c], ignore_index=True), hist_start, window_end, params):
            f = replace(f, score=f.score * PERSISTENT_WEIGHT,
                        evidence={**f.evidence, "view": "persistent"})
            key = (f.statistic, f.entity)
            if key not in best or f.score > best[key].score:
                best[key] = f
        findings = list(best.values())
    return findings, graph


def _detect_all(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceDetectorParams) -> list[Finding]:
    return [*_self_time(b, c, ws, we, p), *_edge_time(b, c, ws, we, p), *_errors(b, c, ws, we, p),
            *_calls(b, c, ws, we, p)]


def _graph(b: pd.DataFrame, c: pd.DataFrame) -> ServiceGraph:
    g = ServiceGraph()
    for frame, which in ((b, "baseline"), (c, "current")):
        rem = frame[frame["remote_child"]]
        if rem.empty:
            continue
        grp = rem.groupby(["parent_service", "service"])
        for (a, z), sub in grp:
            e = g.edges.setdefault((a, z), EdgeStats())
            setattr(e, f"calls_{which}", int(len(sub)))
            setattr(e, f"callee_ms_{which}", float(sub["dur_ms"].median()))
        cl = frame[frame["is_client"]]
        for (a, z), sub in cl.groupby(["service", "callee"]):
            e = g.edges.setdefault((a, z), EdgeStats())
            setattr(e, f"edge_ms_{which}", float(sub["self_ms"].median()))
    return g


def _onset(sub: pd.DataFrame, threshold: float, col: str) -> float:
    hit = sub[sub[col] >= threshold]
    src = hit if len(hit) else sub
    return float(src["start_ns"].min() / 1e9)


def _slowdown(xb: np.ndarray, xc: np.ndarray, n_tests: int, p: TraceDetectorParams
              ) -> tuple[float, float, float, float] | None:
    """(baseline median, current median, ratio, surprise) when the current times are slower
    by the configured ratio, added milliseconds and significance (Bonferroni over n_tests)."""
    mb, mc = float(np.median(xb)), float(np.median(xc))
    ratio = (mc + 0.1) / (mb + 0.1)
    if ratio < p.min_ratio or mc - mb < p.min_added_ms:
        return None
    s = _surprise_slower(xb, xc)
    if s - math.log10(n_tests) < p.min_surprise:
        return None
    return mb, mc, ratio, s


def _self_time(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceDetectorParams) -> list[Finding]:
    own_b = b[~b["is_client"]]
    own_c = c[~c["is_client"]]
    bg = {k: v["self_ms"].to_numpy() for k, v in own_b.groupby(["service", "operation"])}
    groups = [(k, v) for k, v in own_c.groupby(["service", "operation"]) if len(v) >= p.min_spans and k in bg]
    n_tests = max(len(groups), 1)
    dur = max(we - ws, 1.0)
    out = []
    for (svc, op), sub in groups:
        xb, xc = bg[(svc, op)], sub["self_ms"].to_numpy()
        slow = _slowdown(xb, xc, n_tests, p)
        if slow is None:
            continue
        mb, mc, ratio, s = slow
        added = float((xc.mean() - xb.mean()) * len(xc) / dur)  # ms of extra work per second
        worst = sub.nlargest(3, "self_ms")
        findings_score = _score(s, n_tests, ratio)
        out.append(Finding(
            kind=FindingKind.TRACE_ANOMALY, entity=f"{svc}: {op}", value=mc, threshold=mb * p.min_ratio,
            baseline=mb, window_start=ws, window_end=we, onset=_onset(sub, mb * p.min_ratio, "self_ms"),
            score=findings_score, service=svc, direction=Direction.UP, statistic="self_time_ms_p50",
            message=(f"{svc} {op}: median self time {mc:.1f} ms vs {mb:.1f} ms in the baseline "
                     f"(x{ratio:.1f}, {len(xc)} spans, {added:.1f} ms/s added)"),
            evidence={"operation": op, "spans": int(len(xc)), "baseline_spans": int(len(xb)),
                      "p90_ms": float(np.percentile(xc, 90)), "baseline_p90_ms": float(np.percentile(xb, 90)),
                      "ratio": ratio, "added_ms_per_s": added, "surprise": s,
                      "trace_ids": worst["trace_id"].tolist()},
        ))
    return out


def _edge_time(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceDetectorParams) -> list[Finding]:
    bg = {k: v["self_ms"].to_numpy() for k, v in b[b["is_client"]].groupby(["service", "callee"])}
    groups = [(k, v) for k, v in c[c["is_client"]].groupby(["service", "callee"]) if len(v) >= 2 and k in bg]
    n_tests = max(len(groups), 1)
    out = []
    for (caller, callee), sub in groups:
        xb, xc = bg[(caller, callee)], sub["self_ms"].to_numpy()
        slow = _slowdown(xb, xc, n_tests, p)
        if slow is None:
            continue
        mb, mc, ratio, s = slow
        worst = sub.nlargest(3, "self_ms")
        out.append(Finding(
            kind=FindingKind.TRACE_ANOMALY, entity=f"{caller} -> {callee}", value=mc, threshold=mb * p.min_ratio,
            baseline=mb, window_start=ws, window_end=we, onset=_onset(sub, mb * p.min_ratio, "self_ms"),
            score=_score(s, n_tests, ratio), service=callee, direction=Direction.UP, statistic="edge_time_ms_p50",
            message=(f"calls {caller} -> {callee}: median time outside both services {mc:.1f} ms vs "
                     f"{mb:.1f} ms in the baseline ({len(xc)} calls)"),
            evidence={"caller": caller, "callee": callee, "calls": int(len(xc)), "ratio": ratio, "surprise": s,
                      "trace_ids": worst["trace_id"].tolist()},
        ))
    return out


def _errors(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceDetectorParams) -> list[Finding]:
    if not c["error"].any():
        return []
    nb = b.groupby("service").agg(spans=("error", "size"), origins=("error_origin", "sum"))
    nc = c.groupby("service").agg(spans=("error", "size"), origins=("error_origin", "sum"), errors=("error", "sum"))
    nc = nc[nc["origins"] >= 1]
    n_tests = max(len(nc), 1)
    out = []
    for svc, row in nc.iterrows():
        bs, bo = (int(nb.loc[svc, "spans"]), int(nb.loc[svc, "origins"])) if svc in nb.index else (0, 0)
        rate_b = (bo + 0.5) / (bs + 1)
        expected = rate_b * row["spans"]
        if row["origins"] < 2 or row["origins"] < 2 * expected:
            continue
        s = float(-stats.poisson.logsf(row["origins"] - 1, max(expected, 1e-9)) / math.log(10))
        sc = _score(s, n_tests, row["origins"] / max(expected, 1e-9))
        if sc <= 0:
            continue
        sub = c[(c["service"] == svc) & c["error_origin"]]
        out.append(Finding(
            kind=FindingKind.TRACE_ANOMALY, entity=f"{svc}: error origin", value=row["origins"] / row["spans"],
            threshold=2 * rate_b, baseline=bo / bs if bs else 0.0, window_start=ws, window_end=we,
            onset=float(sub["start_ns"].min() / 1e9), score=sc, service=svc, direction=Direction.UP,
            statistic="error_origin_rate",
            message=(f"{svc}: {int(row['origins'])} of {int(row['spans'])} spans are the deepest failing span "
                     f"of their trace ({bo} of {bs} in the baseline)"),
            evidence={"origins": int(row["origins"]), "errors": int(row["errors"]), "spans": int(row["spans"]),
                      "operations": sub["operation"].value_counts().head(3).to_dict(),
                      "trace_ids": sub["trace_id"].head(3).tolist(), "surprise": s},
        ))
    return out


def _calls(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceDetectorParams) -> list[Finding]:
    """Child calls per parent run, baseline vs current; findings name the parent service."""
    def table(f: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        runs = f.groupby(["service", "operation"]).size()
        kids = f[f["parent_service"].notna()].groupby(
            ["parent_service", "parent_operation", "service", "operation"]).size()
        return runs, kids

    runs_b, kids_b = table(b)
    runs_c, kids_c = table(c)
    keys = kids_b.index.union(kids_c.index)
    kb = kids_b.reindex(keys, fill_value=0).to_numpy(float)
    kc = kids_c.reindex(keys, fill_value=0).to_numpy(float)
    parents = pd.MultiIndex.from_arrays([keys.get_level_values(0), keys.get_level_values(1)])
    rb = runs_b.reindex(parents, fill_value=0).to_numpy(float)
    rc = runs_c.reindex(parents, fill_value=0).to_numpy(float)
    live = (rb > 0) & (rc >= p.min_spans)
    expected = np.where(live, kb / np.maximum(rb, 1) * rc, 0.0)
    vanished = live & (expected >= p.vanish_min_expected) & (kc <= p.vanish_max_ratio * expected)
    appeared = live & (kb == 0) & (kc >= p.appear_min_count)
    n_tests = max(int(live.sum()), 1)
    out = []
    for i in np.flatnonzero(vanished | appeared):
        psvc, pop, csvc, cop = keys[i]
        if vanished[i]:
            s = float(-stats.poisson.logcdf(kc[i], expected[i]) / math.log(10))
            ratio, stat, verb = expected[i] / (kc[i] + 1), "calls_vanished", "stopped"
        else:
            exp0 = 0.5 / rb[i] * rc[i]
            s = float(-stats.poisson.logsf(kc[i] - 1, exp0) / math.log(10))
            ratio, stat, verb = kc[i] / exp0, "calls_appeared", "started"
        sc = _score(s, n_tests, ratio)
        if s - math.log10(n_tests) < p.min_surprise or sc <= 0:
            continue
        out.append(Finding(
            kind=FindingKind.TRACE_ANOMALY, entity=f"{psvc}: {pop} -> {csvc}: {cop}", value=float(kc[i]),
            threshold=float(expected[i] * p.vanish_max_ratio) if vanished[i] else float(p.appear_min_count),
            baseline=float(expected[i]), window_start=ws, window_end=we, onset=ws, score=sc, service=psvc,
            direction=Direction.DOWN if vanished[i] else Direction.UP, statistic=stat,
            message=(f"{psvc} {pop} {verb} calling {csvc} {cop}: {int(kc[i])} calls in {int(rc[i])} runs, "
                     f"expected {expected[i]:.1f} from the baseline ({int(kb[i])} in {int(rb[i])} runs)"),
            evidence={"parent_operation": pop, "child_service": csvc, "child_operation": cop,
                      "calls": int(kc[i]), "runs": int(rc[i]), "baseline_calls": int(kb[i]),
                      "baseline_runs": int(rb[i]), "surprise": s},
        ))
    return out
