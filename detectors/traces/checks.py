"""The trace checks: where time is added, where errors start, which calls changed.

Each check compares prepared span tables (spans.prepare), reference `b` against
current `c`, and corrects its p-values for the number of tests it made.

- Self time per (service, operation): Welch t-test on log times and the ratio of medians.
- Edge time per caller -> callee: a network fault on one pod slows every edge into it;
  the correlator uses the graph to see which endpoint the slowed edges share.
- Error origins per service: error spans whose children did not fail.
- Call structure per parent (service, operation): child calls per run that stopped (an
  early return or exception) or appeared (a retry loop, a fallback).
- Vanished services: a service the reference's spans held and the window's do not.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from detectors.numbers import median
from detectors.records import Direction, Finding, FindingKind
from detectors.traces.params import TraceParams


def detect_all(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceParams, *,
               peers: bool = True) -> list[Finding]:
    """`peers`: with (almost) no call in `b`, judge edges against the window's other calls
    (`_peer_reference`); off for a second reading whose `b` is not the only reference."""
    return [*_self_time(b, c, ws, we, p), *_edge_time(b, c, ws, we, p, peers), *_errors(b, c, ws, we, p),
            *_calls(b, c, ws, we, p), *_vanished_services(b, c, ws, we, p)]


def _surprise_slower(b: np.ndarray, c: np.ndarray, beyond: bool = False) -> float:
    """-log10 p of a one-sided Welch t-test on log times: latency is roughly log-normal,
    and unlike a rank test this lets a 100x shift on a few calls count as strong evidence.
    With `beyond`, also the binomial surprise of how many current times exceed every
    baseline time (each would with chance 1/(n+1) if nothing changed): a fault that
    delays most calls by seconds leaves a few fast ones, whose spread weakens the t-test."""
    if len(b) < 2 or len(c) < 2:
        return 0.0
    exceed = _surprise_beyond(b, c) if beyond else 0.0
    return max(_welch_slower(b, c), exceed)


def _surprise_beyond(b: np.ndarray, c: np.ndarray) -> float:
    k = int((c > b.max()).sum())
    if k == 0:
        return 0.0
    return float(-stats.binom.logsf(k - 1, len(c), 1.0 / (len(b) + 1)) / math.log(10))


def _welch_slower(b: np.ndarray, c: np.ndarray) -> float:
    lb, lc = np.log(b + 0.1), np.log(c + 0.1)
    if np.ptp(lb) == 0 and np.ptp(lc) == 0:
        return 0.0
    with np.errstate(all="ignore"):
        p = stats.ttest_ind(lc, lb, equal_var=False, alternative="greater").pvalue
    if not np.isfinite(p):
        return 0.0
    return float(-math.log10(max(p, 1e-300)))


def _score(surprise: float, n_tests: int, ratio: float, scale: float = 4.0, effect_scale: float = 1.0) -> float:
    corrected = surprise - math.log10(max(n_tests, 1))
    if corrected <= 0 or ratio <= 1:
        return 0.0
    sig = 1.0 - math.exp(-corrected / scale)
    eff = 1.0 - math.exp(-math.log2(ratio) / effect_scale)
    return float(sig * eff)


def _times(frame: pd.DataFrame, keys: str | list[str]) -> dict[Any, np.ndarray]:
    """Self times per group of `keys` (sorted, no null key), in row order: the groupby's
    groups without slicing a frame per group (most of the checks' time, many operations)."""
    values = frame["self_ms"].to_numpy()
    return {k: values[i] for k, i in frame.groupby(keys, sort=True).indices.items()}


def _onset(sub: pd.DataFrame, threshold: float, col: str) -> float:
    hit = sub[sub[col] >= threshold]
    src = hit if len(hit) else sub
    return float(src["start_ns"].min() / 1e9)


def _slowdown(xb: np.ndarray, xc: np.ndarray, n_tests: int, p: TraceParams, min_ratio: float | None = None
              ) -> tuple[float, float, float, float] | None:
    """(baseline median, current median, ratio, surprise) when the current times are slower
    by the configured ratio (`min_ratio` when given), added milliseconds and significance
    (Bonferroni over n_tests)."""
    mb, mc = median(xb), median(xc)
    ratio = (mc + 0.1) / (mb + 0.1)
    if ratio < (min_ratio or p.min_ratio) or mc - mb < p.min_added_ms:
        return None
    s = _surprise_slower(xb, xc, p.beyond)
    if s - math.log10(n_tests) < p.min_surprise:
        return None
    return mb, mc, ratio, s


def _self_time(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceParams) -> list[Finding]:
    own_b, own_c = b[~b["is_client"]], c[~c["is_client"]]
    bg = _times(own_b, ["service", "operation"])
    cur = _times(own_c, ["service", "operation"])
    groups = [k for k, v in cur.items() if len(v) >= p.min_spans and k in bg]
    n_tests = max(len(groups), 1)
    dur = max(we - ws, 1.0)
    out = []
    for svc, op in groups:
        xb, xc = bg[(svc, op)], cur[(svc, op)]
        slow = _slowdown(xb, xc, n_tests, p)
        if slow is None:
            continue
        mb, mc, ratio, s = slow
        sub = own_c[(own_c["service"] == svc) & (own_c["operation"] == op)]
        added = float((xc.mean() - xb.mean()) * len(xc) / dur)  # ms of extra work per second
        worst = sub.nlargest(3, "self_ms")
        findings_score = _score(s, n_tests, ratio, effect_scale=p.effect_scale)
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


def _edge_time(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceParams, peers: bool
               ) -> list[Finding]:
    ref = b[b["is_client"]]
    pairs = _times(ref, ["service", "callee"])
    into = _times(ref, "callee")
    every = ref["self_ms"].to_numpy()
    cur = c[c["is_client"]]
    times = _times(cur, ["service", "callee"])
    groups = [k for k, v in times.items() if len(v) >= 2]
    n_tests = max(len(groups), 1)
    out = []
    for caller, callee in groups:
        against = _edge_reference(pairs, into, every, caller, callee, p)
        if peers and len(every) < p.min_spans:
            against = _peer_reference(cur, caller, callee, p) or against
        if len(against.times) < 2 or against.weight <= 0:
            continue
        xc = times[(caller, callee)]
        need = against.min_ratio or p.min_ratio
        slow = _slowdown(against.times, xc, n_tests, p, need)
        if slow is None:
            continue
        mb, mc, ratio, s = slow
        sub = cur[(cur["service"] == caller) & (cur["callee"] == callee)]
        weight = _pooled_weight(against, mc, p)
        worst = sub.nlargest(3, "self_ms")
        where = _where(against, p)
        out.append(Finding(
            kind=FindingKind.TRACE_ANOMALY, entity=f"{caller} -> {callee}", value=mc, threshold=mb * need,
            baseline=mb, window_start=ws, window_end=we, onset=_onset(sub, mb * need, "self_ms"),
            score=_score(s, n_tests, ratio, effect_scale=p.effect_scale) * weight, service=callee,
            direction=Direction.UP, statistic="edge_time_ms_p50",
            message=(f"calls {caller} -> {callee}: median time outside both services {mc:.1f} ms vs "
                     f"{mb:.1f} ms {where} ({len(xc)} calls)"),
            # A pair new to the baseline is ranking evidence only (alerts/policy.py).
            evidence={"caller": caller, "callee": callee, "calls": int(len(xc)), "ratio": ratio, "surprise": s,
                      "reference": against.label, "ranking_only": against.new_pair,
                      "trace_ids": worst["trace_id"].tolist()},
        ))
    return out


_OWN = "this pair"
_PEERS = "calls between other services in the window"


def _where(against: _EdgeReference, p: TraceParams) -> str:
    if against.label == _OWN:
        return "in the baseline"
    if against.label == _PEERS:
        return f"for {_PEERS} (the baseline had fewer than {p.min_spans} calls)"
    return f"for {against.label} in the baseline (this pair had fewer than {p.min_spans})"


class _EdgeReference(NamedTuple):
    times: np.ndarray  # the baseline edge times the pair is judged against
    label: str  # "this pair", "calls into <callee>" or "all calls"
    weight: float  # what a finding against them counts
    new_pair: bool  # under 2 calls of its own: the old rule could not judge it at all
    min_ratio: float | None = None  # the slowdown it takes (None: TraceParams.min_ratio)


def _edge_reference(pairs: Mapping[tuple[str, str], np.ndarray], into: Mapping[str, np.ndarray],
                    every: np.ndarray, caller: str, callee: str, p: TraceParams) -> _EdgeReference:
    """What a pair's edge times are judged against.

    A pod few requests reach may have (almost) no call of this pair in the reference (a
    short normal period, a quiet caller); a delay on it would then give no evidence at
    all. The time between a client span and its server span is the network and the
    callee's queue, so with fewer than `min_spans` calls of its own the callee's
    incoming calls stand in (same network, same queue: full weight), then every call of
    the system, a rougher stand-in, at `pooled_weight` (see `_pooled_weight`).
    """
    own = pairs.get((caller, callee), np.empty(0))
    new = len(own) < 2
    if len(own) >= p.min_spans:
        return _EdgeReference(own, _OWN, 1.0, new)
    other = into.get(callee, np.empty(0))
    if len(other) >= p.min_spans:
        return _EdgeReference(other, f"calls into {callee}", 1.0, new)
    return _EdgeReference(every, "all calls", p.pooled_weight, new)


def _peer_reference(cur: pd.DataFrame, caller: str, callee: str, p: TraceParams) -> _EdgeReference | None:
    """With (almost) no call in the reference at all (a normal period Tempo kept no traces
    of, a service's first hour), the window's own calls between services other than the
    pair's two stand in: a network fault delays the calls touching one pod, while the
    rest of the system shows what a call takes right now. Pairs differ in their normal
    network time, so the pair must be `peer_min_ratio` times slower than their median.
    None when they are too few to stand in (under `min_spans` calls, or one other pair).
    A delayed pair is usually beyond every one of their calls and then counts in full
    (`_pooled_weight`); it is ranking evidence only, never an alert by itself."""
    apart = cur[~(cur["service"].isin((caller, callee)) | cur["callee"].isin((caller, callee)))]
    if len(apart) < p.min_spans or len(apart.groupby(["service", "callee"])) < 2:
        return None
    return _EdgeReference(apart["self_ms"].to_numpy(), _PEERS, p.pooled_weight, True, p.peer_min_ratio)


def _pooled_weight(against: _EdgeReference, current_median: float, p: TraceParams) -> float:
    """What a finding against `against` counts. Every call of the system is a rough
    stand-in for one pair (its own network path may be slower than most) unless the
    pair's median now lies beyond every call of the reference: then no pair's normal
    time could account for it, and the stand-in is as telling as the pair's own."""
    if against.weight < 1.0 and len(against.times) >= p.min_spans and current_median > float(np.max(against.times)):
        return 1.0
    return against.weight


def _errors(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceParams) -> list[Finding]:
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
                      "trace_ids": sub["trace_id"].head(3).tolist(), "surprise": s, **_unanswered_calls(sub)},
        ))
    return out


def _unanswered_calls(origins: pd.DataFrame) -> dict[str, list[str]]:
    """`samples` naming the peers of failed outgoing calls no span answered: a leaf span under
    its own service's span that names whom it called. A callee that is down sends no span,
    so the caller's call is the deepest failure; the ranking reads the peer named here as it
    reads a log line naming a service (correlators/attribution.py). Empty: no key at all."""
    if "peer" not in origins or "leaf" not in origins:
        return {}
    calls = origins[origins["peer"].notna() & origins["leaf"] & (origins["parent_service"] == origins["service"])]
    if calls.empty:
        return {}
    top = calls.groupby(["operation", "peer"]).size().sort_values(ascending=False, kind="stable").head(3)
    return {"samples": [f"{op}: {n} failed calls to {peer}, no span from it" for (op, peer), n in top.items()]}


def _calls(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceParams) -> list[Finding]:
    """Child calls per parent run, baseline vs current; findings name the parent service."""
    def table(f: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        runs = f.groupby(["service", "operation"]).size()
        kids = f[f["parent_service"].notna()].groupby(
            ["parent_service", "parent_operation", "service", "operation"]).size()
        return runs, kids

    runs_b, kids_b = table(b)
    runs_c, kids_c = table(c)
    keys = kids_b.index.union(kids_c.index)
    per_run = b[b["parent_service"].notna()].groupby(
        ["parent_service", "parent_operation", "service", "operation", "run"]).size()  # NaN run: no group
    sq_b = (per_run.astype(float) ** 2).groupby(level=[0, 1, 2, 3]).sum().reindex(keys, fill_value=0).to_numpy(float)
    kb = kids_b.reindex(keys, fill_value=0).to_numpy(float)
    kc = kids_c.reindex(keys, fill_value=0).to_numpy(float)
    parents = pd.MultiIndex.from_arrays([keys.get_level_values(0), keys.get_level_values(1)])
    rb = runs_b.reindex(parents, fill_value=0).to_numpy(float)
    rc = runs_c.reindex(parents, fill_value=0).to_numpy(float)
    live = (rb > 0) & (rc >= p.min_spans)
    expected = np.where(live, kb / np.maximum(rb, 1) * rc, 0.0)
    vanished = live & (expected >= p.vanish_min_expected) & (kc <= p.vanish_max_ratio * expected)
    phi = _dispersion(kb, sq_b, rb)
    appeared = live & (kb == 0) & (kc >= p.appear_min_count)
    n_tests = max(int(live.sum()), 1)
    out = []
    for i in np.flatnonzero(vanished | appeared):
        psvc, pop, csvc, cop = keys[i]
        if vanished[i]:
            # Quasi-Poisson: calls made in bursts (a run that flushes 60 at once, most none)
            # are fewer independent events than calls; counted as calls, a window without
            # the burst read as "stopped".
            s = float(-stats.poisson.logcdf(kc[i] / phi[i], expected[i] / phi[i]) / math.log(10))
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


def _dispersion(total: np.ndarray | pd.Series, sum_sq: np.ndarray | pd.Series, units: np.ndarray | float
                ) -> np.ndarray:
    """Variance over mean of the per-unit counts (calls per parent run, per trace), at
    least 1: how many calls one independent event is worth. Independent calls give ~1; a
    caller that makes them in bursts gives about the burst's size."""
    n = np.maximum(np.asarray(units, dtype=float), 1.0)
    mean = np.asarray(total, dtype=float) / n
    var = np.asarray(sum_sq, dtype=float) / n - mean ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(np.where(mean > 0, var / mean, 1.0), 1.0)


def _vanished_services(b: pd.DataFrame, c: pd.DataFrame, ws: float, we: float, p: TraceParams) -> list[Finding]:
    """A service with no span in the window although its share of the reference's calls
    into services expected at least `vanish_min_expected` (its pods crashed, or it stopped
    reporting): its callers may fall back without an error, and without this it had no
    evidence at all. A call into a service (a root span, or one whose parent is in another
    service) is the unit, not a span: one call's many inner spans are not independent.
    Expected from its share, not a rate, so a quieter window expects fewer."""

    def entries(f: pd.DataFrame) -> pd.DataFrame:
        return f.loc[f["remote_child"] | f["parent_service"].isna(), ["service", "trace"]]

    eb_calls, ec = entries(b), entries(c)["service"]
    eb = eb_calls["service"]
    if eb.empty or ec.empty:
        return []
    counts = eb.value_counts()
    # Calls into a service clustered in a few traces (a job calling it 60 times at once)
    # are worth fewer independent chances of seeing it in the window.
    sq = (eb_calls.groupby(["service", "trace"]).size().astype(float) ** 2).groupby(level=0).sum()
    phi = pd.Series(_dispersion(counts, sq.reindex(counts.index, fill_value=0.0), float(b["trace"].nunique())),
                    index=counts.index)
    # The window's calls are the other services' only: scaled by what they were in the reference.
    expected = counts / (len(eb) - counts).clip(lower=1) * len(ec)
    gone = expected[~expected.index.isin(set(c["service"])) & (expected >= p.vanish_min_expected)]
    n_tests = max(len(counts), 1)
    out = []
    for svc, e in gone.items():
        s = float(e / phi[svc] / math.log(10))  # -log10 of the (quasi-)Poisson chance of no call at all
        sc = _score(s, n_tests, float(e))
        if s - math.log10(n_tests) < p.min_surprise or sc <= 0:
            continue
        out.append(Finding(
            kind=FindingKind.TRACE_ANOMALY, entity=f"{svc}: spans", value=0.0,
            threshold=float(e * p.vanish_max_ratio), baseline=float(e), window_start=ws, window_end=we,
            onset=ws, score=sc, service=str(svc), direction=Direction.DOWN, statistic="service_vanished",
            message=(f"{svc}: no spans in the window, expected {e:.0f} calls into it from its share of the "
                     f"baseline's ({int(counts[svc])} of {len(eb)}): check that it is running"),
            # Ranking evidence only (alerts/policy.py), as a log line that stopped: a service
            # scaled to zero, retired, or called only by a job that has ended is gone too.
            evidence={"baseline_calls": int(counts[svc]), "window_calls": int(len(ec)), "expected": float(e),
                      "ranking_only": True},
        ))
    return out
