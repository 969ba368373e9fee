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
from typing import NamedTuple

import numpy as np
import pandas as pd

from detectors.logs.views import FRESH, PERSISTENT, Ctx, score_from_surprise
from detectors.records import Direction, Finding, FindingKind


class _Tests(NamedTuple):
    """One test per (service, template), services in order of appearance, templates by id."""

    svc: np.ndarray  # object: service names
    tid: np.ndarray
    n_after: np.ndarray  # active seconds of the service after the template's last line
    q: np.ndarray  # share of the service's active seconds before it that had the template
    onset: np.ndarray  # the first of those seconds after it


def quiet_findings(g: pd.DataFrame, names: dict[int, str], ctx: Ctx) -> list[Finding]:
    """Findings (statistic `vanished_template`, evidence `by: "active seconds"`) for
    non-error templates that stopped; `g` has ts, service, tid, is_error, _grp."""
    lines = g[~g["is_error"]]
    if not (lines["_grp"] == 2).any():
        return []
    t = _tests(lines)
    p = ctx.params
    n_tests = max(len(t.tid), 1)
    expect = t.q * t.n_after
    tests = [(str(t.svc[i]), int(t.tid[i]), float(expect[i]), float(t.n_after[i]), float(t.q[i]),
              float(t.onset[i])) for i in np.flatnonzero(expect >= p.vanish_min_expected)]
    out = []
    for svc, tid, expected, active, q, onset in tests:
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


def _tests(lines: pd.DataFrame) -> _Tests:
    """Every (service, template) test in one pass over the lines (a slice per template was
    18 % of a Nezha case without traces). A service is tested when it wrote a line in the
    window; a template, when its service had active seconds both before its last line
    (the normal period's count too) and after it. Lines without a time count for no second."""
    svc, services = pd.factorize(lines["service"])  # order of appearance; no service: -1
    tid, tids = pd.factorize(lines["tid"], sort=True)
    sec, sec_values = pd.factorize(np.floor(lines["ts"].to_numpy(float)), sort=True)  # in time order; NaN: -1
    grp = lines["_grp"].to_numpy()
    n_sec, n_tid = max(int(sec.max()) + 1, 1), max(len(tids), 1)
    keep = svc >= 0
    tested = np.zeros(len(services) + 1, bool)
    tested[svc[keep & (grp == 2)]] = True
    keep &= tested[svc]
    svc, tid, sec, grp = svc[keep].astype(np.int64), tid[keep].astype(np.int64), sec[keep], grp[keep]
    timed = sec >= 0
    # Active seconds: of the normal period, and the sorted live (history + window) ones.
    n_ref = np.bincount(np.unique(svc[timed & (grp == 0)] * n_sec + sec[timed & (grp == 0)]) // n_sec,
                        minlength=len(services))
    live_keys = np.unique(svc[timed & (grp >= 1)] * n_sec + sec[timed & (grp >= 1)])
    # The pairs tested, service by service, templates by id; seconds each template was seen.
    pair, pair_of = np.unique(svc * n_tid + tid, return_inverse=True)
    p_svc = pair // n_tid
    seen = np.bincount(np.unique(pair_of[timed] * n_sec + sec[timed]) // n_sec, minlength=len(pair))
    last = np.full(len(pair), -1, np.int64)  # the template's last live second; -1: none
    live = timed & (grp >= 1)
    np.maximum.at(last, pair_of[live], sec[live])
    first_live = np.searchsorted(live_keys, p_svc * n_sec)
    n_live = np.searchsorted(live_keys, (p_svc + 1) * n_sec) - first_live
    n_upto = np.where(last >= 0, np.searchsorted(live_keys, p_svc * n_sec + last, side="right") - first_live, 0)
    n_after, n_before = n_live - n_upto, n_ref[p_svc] + n_upto
    ok = (n_after > 0) & (n_before > 0)
    onset = sec_values[live_keys[(first_live + n_upto)[ok]] % n_sec]  # the first live second after it
    q = np.minimum(1.0, seen[ok] / n_before[ok])
    return _Tests(services[p_svc[ok]].to_numpy(object), tids[pair[ok] % n_tid].to_numpy(),
                  n_after[ok].astype(float), q, np.asarray(onset, float))
