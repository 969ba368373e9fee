"""Vanished templates: a line a span used to write, per run, that stopped although the span still runs.

An injected exception or early return cuts a code path short: the lines after the cut
stop while the operation keeps being called. Needs lines that carry a span id and the
spans themselves (operation and start of each run). Counted per run, so a change of
load is not a vanishing. Two tests, the stronger kept per (operation, template):
- fewer lines per run in the window than in the reference (see views.py);
- it stopped: the last n runs of the operation wrote it 0 times, where the runs before
  (and the normal window) wrote it lambda times per run; P = exp(-lambda n). This one
  does not need to know when the cut happened, so the normal stretch a window starts
  with (alert times are imprecise) does not hide it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from detectors.logs.views import FRESH, PERSISTENT, Ctx, View, score_from_surprise, surprise_down, view_counts
from detectors.records import Direction, Finding, FindingKind, Span
from detectors.tables import Kind

# The reference's span runs as the fitted state keeps them.
OPS_COLUMNS: dict[str, Kind] = {"span_id": "str", "operation": "str", "service": "str", "start": "float"}


def span_ops(spans: Sequence[Span]) -> pd.DataFrame:
    return pd.DataFrame({"span_id": [s.span_id for s in spans], "operation": [s.operation for s in spans],
                         "service": [s.service for s in spans],
                         "start": np.fromiter((s.start_ns / 1e9 for s in spans), float, len(spans))})


class _Cand(NamedTuple):
    score: float
    view: View
    obs: float  # lines written in the view's window
    ref: float  # lines in the view's reference
    expected: float
    runs: float  # runs of the operation in the view's window
    ref_runs: float
    surprise: float
    onset: float | None  # known when the line stopped; else the first run of the window


def vanished_findings(g: pd.DataFrame, names: dict[int, str], ops: pd.DataFrame, ctx: Ctx) -> list[Finding]:
    # Only non-error templates: an error line that stops is a recovery, not a fault.
    g = g[g["span_id"].notna() & ~g["is_error"]]
    if g.empty or ops.empty:
        return []
    ops = ops.drop_duplicates("span_id")
    ops = ops.assign(op=ops["service"] + "\t" + ops["operation"])
    runs = ops.groupby(["op", "_grp"]).size().unstack(fill_value=0).reindex(columns=[0, 1, 2], fill_value=0)
    g = g.assign(op=g["span_id"].map(ops.set_index("span_id")["op"])).dropna(subset=["op"])
    if g.empty:
        return []
    per = g.groupby(["op", "tid", "_grp"]).size().unstack(fill_value=0).reindex(columns=[0, 1, 2], fill_value=0)
    if per.empty:
        return []
    n = per.to_numpy(float)
    r = runs.reindex(per.index.get_level_values(0), fill_value=0).to_numpy(float)
    n_tests = max(len(per), 1)
    best = _fewer_per_run(n, r, n_tests, ctx)
    for i, cand in _stopped(g, ops, per, n, r, n_tests, ctx).items():
        if cand.score > (best[i].score if i in best else 0.0):
            best[i] = cand
    return [_finding(c, per.index[i], names, ops, ctx) for i, c in best.items()]


def _fewer_per_run(n: np.ndarray, r: np.ndarray, n_tests: int, ctx: Ctx) -> dict[int, _Cand]:
    """Rows of `per` (lines `n`, runs `r` per group) writing too few lines per run."""
    p = ctx.params
    best: dict[int, _Cand] = {}
    for v in ctx.views:
        obs, ref, _, _ = view_counts(n, ctx.dur, v)
        r_obs, r_ref, _, _ = view_counts(r, ctx.dur, v)
        ok = (r_ref > 0) & (r_obs > 0)
        expected = np.where(ok, ref / np.maximum(r_ref, 1) * r_obs, 0.0)
        hit = ok & (expected >= p.vanish_min_expected) & (obs <= p.vanish_max_ratio * expected)
        for i in map(int, np.flatnonzero(hit)):
            s = float(surprise_down(np.array([obs[i]]), np.array([expected[i]]))[0])
            sc = score_from_surprise(s, n_tests) * v.weight
            if sc > 0 and sc > (best[i].score if i in best else 0.0):
                best[i] = _Cand(sc, v, obs[i], ref[i], expected[i], r_obs[i], r_ref[i], s, None)
    return best


def _finding(c: _Cand, key: tuple[str, int], names: dict[int, str], ops: pd.DataFrame, ctx: Ctx) -> Finding:
    p = ctx.params
    # A line written in fewer than half of its operation's runs sits on a branch some
    # inputs take; its absence may be a change of input mix rather than a cut path.
    sc = float(c.score * min(1.0, c.expected / max(c.runs, 1.0) / p.vanish_branch_rate))
    op_key, tid = key
    service, op = op_key.split("\t", 1)
    tmpl = names.get(int(tid), "")
    onset = c.onset
    if onset is None:
        sel = ops[(ops["op"] == op_key) & (ops["_grp"] >= (1 if c.view is PERSISTENT else 2))]
        onset = float(sel["start"].min()) if len(sel) else ctx.ws
        text = (f"{service}: {op} ran {int(c.runs)} times but wrote '{tmpl[:80]}' {int(c.obs)} times, "
                f"expected {c.expected:.1f} ({int(c.ref)} per {int(c.ref_runs)} runs in {ctx.ref_text(c.view)})")
    else:
        text = (f"{service}: '{tmpl[:80]}' stopped: the last {int(c.runs)} runs of {op} wrote it 0 times, "
                f"expected {c.expected:.1f} ({int(c.ref)} per {int(c.ref_runs)} runs before)")
    return Finding(
        kind=FindingKind.LOG_ANOMALY, entity=f"{service}: {tmpl[:160]}", value=float(c.obs),
        threshold=float(c.expected * p.vanish_max_ratio), baseline=float(c.ref),
        window_start=ctx.ws, window_end=ctx.we, onset=float(onset), score=sc, service=service,
        direction=Direction.DOWN, statistic="vanished_template", message=text,
        evidence={"operation": op, "template": tmpl, "count": int(c.obs), "expected": float(c.expected),
                  "runs": int(c.runs), "baseline_runs": int(c.ref_runs), "surprise": c.surprise,
                  "view": c.view.name},
    )


def _stopped(g: pd.DataFrame, ops: pd.DataFrame, per: pd.DataFrame, n: np.ndarray, r: np.ndarray,
             n_tests: int, ctx: Ctx) -> dict[int, _Cand]:
    """Rows of `per` whose template stopped before the end of the data: vanished_template candidates."""
    p = ctx.params
    live = ops.loc[ops["_grp"] >= 1, ["span_id", "op", "start"]]
    if live.empty:
        return {}
    lg = g[g["_grp"] >= 1]
    last = lg.assign(t=lg["span_id"].map(live.set_index("span_id")["start"])).groupby(["op", "tid"])["t"].max()
    # -inf: not written since the history began, so every live run comes after it.
    rows = pd.DataFrame({"i": np.arange(len(per)), "op": per.index.get_level_values(0),
                         "t_last": last.reindex(per.index).fillna(-np.inf).to_numpy(float)})
    m = rows.merge(live, on="op")
    after = m[m["start"] > m["t_last"]].groupby("i")["start"].agg(["size", "min"])
    total = m.groupby("i").size()
    out: dict[int, _Cand] = {}
    for i, n_after, onset in zip(after.index, after["size"].to_numpy(), after["min"].to_numpy(), strict=True):
        k = int(total[i] - n_after)  # live runs up to the last one that wrote it
        lines_before = n[i].sum()
        runs_before = r[i, 0] + k
        if runs_before <= 0 or lines_before <= 0:
            continue
        expected = lines_before / runs_before * n_after
        if expected < p.vanish_min_expected:
            continue
        s = expected / math.log(10)  # -log10 P(0 lines | Poisson(expected))
        v = FRESH if onset >= ctx.ws or len(ctx.views) == 1 else PERSISTENT
        sc = score_from_surprise(s, n_tests) * v.weight
        if sc > 0:
            out[int(i)] = _Cand(sc, v, 0.0, lines_before, expected, float(n_after), runs_before, s, float(onset))
    return out
