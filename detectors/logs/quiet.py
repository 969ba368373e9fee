"""Quiet templates: without spans, a line a service kept writing that stopped while the
service kept logging (the span-less cousin of vanished.py).

Many systems ship logs and no traces. An injected exception or early return cuts a code
path short there too, and the lines after the cut stop; with no span to count runs by,
the service's own activity stands in: the seconds in which it wrote any other non-error
line. A template that appeared in `q` of those seconds before its last line, and then
in none of the `n` active seconds after it, stopped with P = exp(-q n). Seconds rather
than lines, since one request writes several lines at once and counting them as
independent would overstate the surprise. Runs only when there are no span runs to
count by (no spans in the window or in the reference). A stopped line may also be a job
that ended or an endpoint nobody calls now, so the finding is ranking evidence only
(`ranking_only`): it places an incident's cause, it never raises an alert by itself.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from detectors.logs.views import FRESH, PERSISTENT, Ctx, score_from_surprise
from detectors.records import Direction, Finding, FindingKind


def quiet_findings(g: pd.DataFrame, names: dict[int, str], ctx: Ctx) -> list[Finding]:
    """Findings (statistic `vanished_template`, evidence `by: "active seconds"`) for
    non-error templates that stopped; `g` has ts, service, tid, is_error, _grp."""
    lines = g[~g["is_error"]]
    lines = lines.assign(sec=np.floor(lines["ts"].to_numpy(float)))
    if not (lines["_grp"] == 2).any():
        return []
    tests: list[tuple[str, int, float, float, float, float]] = []  # service, tid, expected, n, q, onset
    for svc, s in lines.groupby("service", sort=False):
        live = s[s["_grp"] >= 1]
        if not (live["_grp"] == 2).any():
            continue
        n_ref = s.loc[s["_grp"] == 0, "sec"].nunique()  # the normal period: before any live second
        secs_live = np.sort(live["sec"].unique())
        last = live.groupby("tid")["sec"].max()
        for tid, t in s.groupby("tid")["sec"]:
            n_upto = int(np.searchsorted(secs_live, float(last.get(tid, -np.inf)), side="right"))
            n_after, n_before = len(secs_live) - n_upto, n_ref + n_upto
            if not n_after or not n_before:
                continue
            q = min(1.0, t.nunique() / n_before)
            tests.append((str(svc), int(tid), q * n_after, float(n_after), q, float(secs_live[n_upto])))
    p = ctx.params
    n_tests = max(len(tests), 1)
    out = []
    for svc, tid, expected, active, q, onset in tests:
        if expected < p.vanish_min_expected:
            continue
        surprise = expected / math.log(10)  # -log10 P(0 | Poisson(expected))
        view = FRESH if onset >= ctx.ws or len(ctx.views) == 1 else PERSISTENT
        score = score_from_surprise(surprise, n_tests) * view.weight
        if score <= 0:
            continue
        tmpl = names.get(tid, "")
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{svc}: {tmpl[:160]}", value=0.0,
            threshold=float(expected * p.vanish_max_ratio), baseline=float(expected), window_start=ctx.ws,
            window_end=ctx.we, onset=onset, score=score, service=svc, direction=Direction.DOWN,
            statistic="vanished_template",
            message=(f"{svc}: '{tmpl[:80]}' stopped: written in {q:.0%} of the seconds {svc} logged before, "
                     f"then in none of the last {int(active)} (expected {expected:.1f}; no spans to count runs)"),
            evidence={"template": tmpl, "by": "active seconds", "ranking_only": True,
                      "active_seconds": int(active), "share": q, "expected": expected, "surprise": surprise,
                      "view": view.name},
        ))
    return out
