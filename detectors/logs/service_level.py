"""Service-wide evidence: an error burst (all error lines of a service together) and
well-known fatal patterns (OOMKilled, CUDA out of memory, Java OutOfMemoryError, stack
traces, panics), which are actionable whatever their count."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.logs.shapes import SAMPLE_CHARS, SAMPLES
from detectors.logs.views import FRESH, PERSISTENT, Ctx, expected_lines, score_from_surprise, surprise_up, view_counts
from detectors.records import Direction, Finding, FindingKind


def service_findings(g: pd.DataFrame, ctx: Ctx) -> list[Finding]:
    """For services with any error or fatal line since the history began."""
    gl = g[g["_grp"] > 0]
    loud = set(gl.loc[gl["is_error"] | (gl["fatal"] != ""), "service"])
    findings: list[Finding] = []
    for service, grp in g[g["service"].isin(loud)].groupby("service", sort=True):
        findings += _error_burst(str(service), grp, ctx) + _fatal_patterns(str(service), grp, ctx)
    return findings


def _error_burst(service: str, g: pd.DataFrame, ctx: Ctx) -> list[Finding]:
    p = ctx.params
    err = g[g["is_error"]]
    n = np.array([[float((err["_grp"] == k).sum()) for k in (0, 1, 2)]])
    best = None
    for v in ctx.views:
        obs, ref, _, _ = (float(x[0]) if isinstance(x, np.ndarray) else x for x in view_counts(n, ctx.dur, v))
        if obs < p.min_count:
            continue
        e = float(expected_lines(n, ctx.dur, v)[0])
        s = float(surprise_up(np.array([obs]), np.array([e]))[0])
        if obs / e < p.min_ratio or s < p.min_surprise:
            continue
        sc = score_from_surprise(s, 1) * 0.8 * v.weight
        if best is None or sc > best[0]:
            best = (sc, v, obs, ref, e, s)
    if best is None:
        return []
    sc, v, obs, ref, e, s = best
    errs = err[err["_grp"] >= (1 if v is PERSISTENT else 2)]
    where = "in the window" if v is FRESH else "since before the alert"
    return [Finding(
        kind=FindingKind.LOG_ANOMALY, entity=f"{service}: error lines", value=obs,
        threshold=e * p.min_ratio, baseline=ref, window_start=ctx.ws, window_end=ctx.we,
        onset=float(errs["ts"].min()), score=sc, service=service,
        direction=Direction.UP, statistic="error_burst",
        message=f"{service}: {int(obs)} error lines {where}, expected {e:.1f} from {ctx.ref_text(v)}",
        evidence={"count": int(obs), "baseline_count": int(ref), "expected": e, "surprise": s,
                  "view": v.name, "samples": errs["line"].head(SAMPLES).str.slice(0, SAMPLE_CHARS).tolist()},
    )]


def _fatal_patterns(service: str, g: pd.DataFrame, ctx: Ctx) -> list[Finding]:
    p = ctx.params
    out: list[Finding] = []
    b, c = g[g["_grp"] < 2], g[g["_grp"] == 2]
    ref_s = ctx.dur[0] + ctx.dur[1]
    for name in c.loc[c["fatal"] != "", "fatal"].unique():
        hit_c = c[c["fatal"] == name]
        hb = int((b["fatal"] == name).sum())
        e = (hb + 0.5) * ctx.dur[2] / max(ref_s, 1.0)
        if len(hit_c) / e < p.min_ratio:
            continue  # the same pattern was already common before the window
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{service}: {name}", value=float(len(hit_c)),
            threshold=float(e * p.min_ratio), baseline=float(hb), window_start=ctx.ws, window_end=ctx.we,
            onset=float(hit_c["ts"].min()), score=0.9 if name != "stack_trace" else 0.6, service=service,
            direction=Direction.UP, statistic=f"fatal_{name}",
            message=f"{service}: {name.replace('_', ' ')} in {len(hit_c)} lines (baseline {hb})",
            evidence={"pattern": name, "count": int(len(hit_c)), "baseline_count": hb,
                      "samples": hit_c["line"].head(SAMPLES).str.slice(0, SAMPLE_CHARS).tolist()},
        ))
    return out
