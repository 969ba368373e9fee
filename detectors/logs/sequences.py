"""Broken sequences: a line that stopped following its partner in some spans.

Needs lines that carry a span id. In the reference, every span that wrote template A
also wrote template B at least as often (B follows A: "calculate distance" after each
"get rest ticket number"); in the window, spans that wrote A lack some of their B
lines. An exception or early return caught inside a loop cuts the path after A for
some items only, so neither A nor the span's runs vanish and only the pairing shows it
(the event-pattern idea of Nezha, Yu et al., FSE 2023, reduced to pairs of templates
within one span).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from detectors.logs.views import FRESH, PERSISTENT, Ctx, View, score_from_surprise
from detectors.records import Direction, Finding, FindingKind

_WORD = re.compile(r"[A-Za-z][A-Za-z_]+")


def _statement(template: str, words: int = 8) -> str:
    """The log statement a template comes from: its first `words` constant words."""
    return " ".join(_WORD.findall(template.replace("<*>", " "))[:words])


class _Pair(NamedTuple):
    score: float
    view: View
    after: int  # template id of A
    missing: int  # template id of B, the line that went missing
    broken: float  # tested spans with fewer B than A
    spans: float  # tested spans with A
    ref_broken: float
    ref_spans: float
    surprise: float
    onset: float


class _Spans(NamedTuple):
    """One service's spans: lines per span and statement, and what the views read per span."""

    x: np.ndarray  # int64 (span, statement): lines of the statement in the span
    grp: np.ndarray  # per span: 0 reference, 1 recent history, 2 window (its latest line's)
    first: np.ndarray  # per span: time of its first line
    tids: np.ndarray  # per statement (sorted by statement): a template id that stands for it


def broken_sequence_findings(g: pd.DataFrame, names: dict[int, str], ctx: Ctx) -> list[Finding]:
    """Pairs (A, B) of one service's templates where B followed every A per span and stopped doing so.

    Per span, count lines of each non-error template. In the reference spans (see
    views.py), B "follows" A when nearly every span with A has at least as many B lines
    as A lines. In the tested spans, a span is broken when it has fewer B than A.
    The number of broken spans is tested against the reference share (binomial tail).
    The finding names B, the line that went missing, and its service.
    """
    # Routine lines only: a warning reports an unusual condition, a branch by nature.
    g = g[g["span_id"].notna() & ~g["is_error"] & ~g["level"].isin(("WARN", "WARNING"))]
    if g.empty:
        return []
    # drain3 splits one log statement into several templates when its parameters vary
    # (a train number with another prefix, a list of another length), and the mix of
    # variants follows the workload; pairs are taken between statements instead, a
    # statement being the first constant words of the line.
    stmt = {t: _statement(n) for t, n in names.items()}
    out: list[Finding] = []
    for service, spans in _by_service(g, g["tid"].map(stmt)):
        out += [_finding(service, c, names, ctx) for c in _service_pairs(spans, ctx).values()]
    return out


def _by_service(g: pd.DataFrame, stmt: pd.Series) -> Iterator[tuple[str, _Spans]]:
    """Each service's spans (services in name order), counted in one pass over all lines:
    three group-bys per service cost about 8 % of a Nezha case's CPU."""
    svc, services = pd.factorize(g["service"], sort=True)
    st, _ = pd.factorize(stmt, sort=True)  # sorted: a service's statements in name order
    sp, span_ids = pd.factorize(g["span_id"])
    n_st = max(int(st.max()) + 1, 1)
    # A statement stands for the first of its templates in the lines.
    st_seen, st_first = np.unique(st, return_index=True)
    rep = np.zeros(n_st, np.int64)
    rep[st_seen[st_seen >= 0]] = g["tid"].to_numpy()[st_first[st_seen >= 0]]
    ok = svc >= 0  # a line without a service belongs to no service's spans
    key = svc[ok].astype(np.int64) * max(len(span_ids), 1) + sp[ok]
    span_key, span_of = np.unique(key, return_inverse=True)  # spans in service order
    span_svc = span_key // max(len(span_ids), 1)
    grp = np.full(len(span_key), -1, np.int64)
    np.maximum.at(grp, span_of, g["_grp"].to_numpy(np.int64)[ok])
    first = np.full(len(span_key), np.inf)
    np.fmin.at(first, span_of, g["ts"].to_numpy(float)[ok])  # as min() per group: NaN skipped
    counted = st[ok] >= 0  # lines of a template without a name count for their span only
    cell, n = np.unique(span_of[counted].astype(np.int64) * n_st + st[ok][counted], return_counts=True)
    cell_span, cell_st = cell // n_st, cell % n_st
    bounds = np.searchsorted(span_svc[cell_span], np.arange(len(services) + 1))
    for i, service in enumerate(services):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        rows, r = np.unique(cell_span[lo:hi], return_inverse=True)
        cols, c = np.unique(cell_st[lo:hi], return_inverse=True)
        x = np.zeros((len(rows), len(cols)), np.int64)
        x[r, c] = n[lo:hi]
        yield str(service), _Spans(x, grp[rows], first[rows], rep[cols])


def _service_pairs(spans: _Spans, ctx: Ctx) -> dict[tuple[int, int], _Pair]:
    """The broken pairs of one service, one per missing line B (its strongest anchor A)."""
    p = ctx.params
    x, grp, first, tids = spans
    if x.shape[1] < 2:
        return {}
    has = x > 0
    # broken[s, a, b]: span s wrote A and fewer B than A; paired: as many B as A.
    broken = has[:, :, None] & (x[:, None, :] < x[:, :, None])
    paired = has[:, :, None] & (x[:, None, :] == x[:, :, None])
    reads = [_read(v, grp, x, has, broken, paired, ctx) for v in ctx.views]
    n_tests = max(sum(int(h.sum()) for *_, h in reads) // max(len(reads), 1), 1)
    best: dict[tuple[int, int], _Pair] = {}
    for v, _ref, cur, n_ref, b_ref, holds in reads:
        n_cur = has[cur].sum(axis=0)[:, None].astype(float)
        b_cur = broken[cur].sum(axis=0).astype(float)
        p0 = (b_ref + 0.5) / (n_ref + 1.0)
        hit = holds & (b_cur >= p.pair_min_broken) & (b_cur >= p.min_ratio * p0 * n_cur)
        for a, b in zip(*np.nonzero(hit), strict=True):
            s = float(-stats.binom.logsf(b_cur[a, b] - 1, n_cur[a, 0], p0[a, b]) / math.log(10))
            sc = score_from_surprise(s, n_tests) * v.weight
            if sc <= 0:
                continue
            # Pairs sharing the missing line B are one finding; keep the strongest anchor.
            key = (int(tids[b]), 0)
            if sc > (best[key].score if key in best else 0.0):
                spans_hit = cur & broken[:, a, b]
                onset = float(first[spans_hit].min()) if spans_hit.any() else ctx.ws
                best[key] = _Pair(sc, v, int(tids[a]), int(tids[b]), float(b_cur[a, b]), float(n_cur[a, 0]),
                                  float(b_ref[a, b]), float(n_ref[a, 0]), s, onset)
    return best


def _read(v: View, grp: np.ndarray, x: np.ndarray, has: np.ndarray, broken: np.ndarray, paired: np.ndarray,
          ctx: Ctx) -> tuple[View, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One view's reference and tested spans, and which pairs hold in its reference."""
    p = ctx.params
    ref = grp == 0 if v is PERSISTENT else grp < 2
    cur = grp >= 1 if v is PERSISTENT else grp == 2
    n_ref = has[ref].sum(axis=0)[:, None].astype(float)
    b_ref = broken[ref].sum(axis=0).astype(float)
    # One B per A, span after span: the two lines are steps of one code path.
    # Support: A lines seen in the reference (a short normal window has few spans,
    # but a loop gives several A lines per span, each followed by its B).
    a_lines = x[ref].sum(axis=0)[:, None].astype(float)
    holds = (a_lines >= p.pair_min_lines) & (paired[ref].sum(axis=0) >= p.pair_min_hold * n_ref)
    np.fill_diagonal(holds, False)
    return v, ref, cur, n_ref, b_ref, holds


def _finding(service: str, c: _Pair, names: dict[int, str], ctx: Ctx) -> Finding:
    p = ctx.params
    ta_s, tb_s = names.get(c.after, ""), names.get(c.missing, "")
    k, n, kr, nr = c.broken, c.spans, c.ref_broken, c.ref_spans
    where = "in the window" if c.view is FRESH else "since before the alert"
    return Finding(
        kind=FindingKind.LOG_ANOMALY, entity=f"{service}: {tb_s[:160]}", value=k,
        threshold=float(p.min_ratio * (kr + 0.5) / (nr + 1.0) * n), baseline=kr,
        window_start=ctx.ws, window_end=ctx.we, onset=c.onset, score=c.score, service=service,
        direction=Direction.DOWN, statistic="broken_sequence",
        message=(f"{service}: '{tb_s[:80]}' no longer follows '{ta_s[:80]}' in {int(k)} of {int(n)} spans "
                 f"{where} (it did in all but {int(kr)} of {int(nr)} spans of {ctx.ref_text(c.view)})"),
        evidence={"template": tb_s, "after_template": ta_s, "broken_spans": int(k), "spans": int(n),
                  "baseline_broken_spans": int(kr), "baseline_spans": int(nr), "surprise": c.surprise,
                  "view": c.view.name},
    )
