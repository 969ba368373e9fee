"""Templates per service (drain3 over distinct line shapes) and the findings on their counts.

- an error template never seen in the baseline (a new failure mode),
- an error template seen before whose rate rose (Poisson tail against the baseline
  rate scaled to the window length, so window lengths may differ),
- a new non-error template (weak evidence: workload changes also create them).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from detectors.logs.params import LogParams
from detectors.logs.shapes import SAMPLE_CHARS, SAMPLES
from detectors.logs.views import FRESH, Ctx, View, expected_lines, score_from_surprise, surprise_up, view_counts
from detectors.records import Direction, Finding, FindingKind


def _miner(params: LogParams) -> TemplateMiner:
    cfg = TemplateMinerConfig()
    cfg.drain_sim_th = params.drain_sim_th
    cfg.drain_depth = params.drain_depth
    cfg.parametrize_numeric_tokens = True
    cfg.mask_prefix, cfg.mask_suffix = "<", ">"
    return TemplateMiner(persistence_handler=None, config=cfg)


def _templates(shapes: pd.Series, params: LogParams) -> tuple[dict[str, int], dict[int, str]]:
    """drain3 over distinct shapes of one service: shape -> cluster id, id -> template."""
    miner = _miner(params)
    ids: dict[str, int] = {}
    for shape in shapes.unique():
        ids[shape] = miner.add_log_message(shape)["cluster_id"]
    names = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return ids, names


def assign_templates(both: pd.DataFrame, params: LogParams) -> tuple[np.ndarray, dict[int, str]]:
    """A global template id per row of `both` and the template of each id: drain3 per
    service (templates never span services), ids offset so they never collide."""
    tid = np.zeros(len(both), np.int64)
    names: dict[int, str] = {}
    offset = 0
    for _service, idx in both.groupby("service", sort=True).indices.items():
        ids, local = _templates(both["shape"].iloc[idx], params)
        tid[idx] = both["shape"].iloc[idx].map(ids).to_numpy(np.int64) + offset
        names.update({k + offset: v for k, v in local.items()})
        offset += max(local, default=0) + 1
    return tid, names


def template_table(g: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """One row per template: its service, counts per group (0 normal, 1 recent history,
    2 window), whether it is an error, its first time per group, and sample lines."""
    counts = g.groupby(["tid", "_grp"]).size().unstack(fill_value=0).reindex(columns=[0, 1, 2], fill_value=0)
    tids = counts.index.to_numpy()
    service_of = g.drop_duplicates("tid").set_index("tid")["service"]
    err = g.groupby("tid")["is_error"].mean() >= 0.5
    gl = g[g["_grp"] > 0]
    first = gl.groupby(["tid", "_grp"])["ts"].min().unstack().reindex(columns=[1, 2])
    gc = gl[gl["_grp"] == 2]
    # The first SAMPLES lines of each template in the window, in one pass (a Python
    # function per template, hundreds of them, cost as much as the rest of the table).
    lines: dict[int, list[str]] = {}
    head = gc.groupby("tid", sort=False).head(SAMPLES)
    for t, line in zip(head["tid"].tolist(), head["line"].tolist(), strict=True):
        lines.setdefault(t, []).append(line[:SAMPLE_CHARS])
    return pd.DataFrame({
        "service": service_of.reindex(tids).to_numpy(), "tid": tids,
        "template": [names.get(int(t), "") for t in tids],
        "n0": counts[0].to_numpy(), "n1": counts[1].to_numpy(), "n2": counts[2].to_numpy(),
        "error": err.reindex(tids, fill_value=False).to_numpy(bool),
        "first1": first[1].reindex(tids).to_numpy(float), "first2": first[2].reindex(tids).to_numpy(float),
        "samples": [lines.get(t, []) for t in tids]})


def template_findings(t: pd.DataFrame, ctx: Ctx) -> list[Finding]:
    p = ctx.params
    n = t[["n0", "n1", "n2"]].to_numpy(float)
    # Score every view; keep, per template, the view with the best weighted score.
    best: dict[int, tuple[float, View, float, float, float, float]] = {}
    live = np.zeros(len(t), bool)
    reads = []
    for v in ctx.views:
        obs, ref, cur_s, ref_s = view_counts(n, ctx.dur, v)
        live |= obs >= p.min_count
        reads.append((v, obs, ref))
    n_tests = max(int(live.sum()), 1)
    for v, obs, ref in reads:
        expected = expected_lines(n, ctx.dur, v)
        surprise = surprise_up(obs, expected)
        for i in map(int, np.flatnonzero((obs >= p.min_count) & (obs >= p.min_ratio * expected))):
            s = float(surprise[i])
            if s - math.log10(n_tests) < p.min_surprise:
                continue
            if ref[i] > 0 and not t["error"].iat[i]:
                continue  # a busier info template is load, not a fault
            sc = score_from_surprise(s, n_tests)
            if ref[i] == 0 and not t["error"].iat[i]:
                sc *= 0.25  # workload changes also create new info lines
            sc *= v.weight
            if sc > (best[i][0] if i in best else 0.0):
                best[i] = (sc, v, float(obs[i]), float(ref[i]), float(expected[i]), s)
    out = []
    for i, (sc, v, count, base, e, s) in best.items():
        row = t.iloc[i]
        stat = ("new_error_template" if row["error"] else "new_template") if base == 0 else "error_template_rate"
        where = "in the window" if v is FRESH else "since before the alert"
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{row['service']}: {row['template'][:160]}",
            value=count, threshold=e * p.min_ratio, baseline=base, window_start=ctx.ws, window_end=ctx.we,
            onset=ctx.onset(v, row["first1"], row["first2"]), score=sc, service=row["service"],
            direction=Direction.UP, statistic=stat,
            message=(f"{row['service']}: {stat.replace('_', ' ')} seen {int(count)} times {where}, "
                     f"expected {e:.1f} from {ctx.ref_text(v)} ({int(base)} lines)"),
            evidence={"template": row["template"], "count": int(count), "baseline_count": int(base),
                      "expected": e, "surprise": s, "samples": row["samples"], "error": bool(row["error"]),
                      "view": v.name},
        ))
    return out
