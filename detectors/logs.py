"""Log anomalies: drain3 templates per service, scored against a normal window.

Fit on a reference (the normal window), score the current window. Lines are first
masked (ids, numbers, hex, timestamps) with one vectorised pass and deduplicated,
so drain3 only sees the few hundred distinct shapes, not every line; that keeps a
window of thousands of lines well under 100 ms.

What counts as evidence, and why:
- an error template never seen in the baseline (a new failure mode),
- an error template seen before whose rate rose (Poisson tail against the baseline
  rate scaled to the window length, so window lengths may differ),
- a service-wide error burst (all error lines of the service together),
- well-known fatal patterns (OOMKilled, CUDA out of memory, Java OutOfMemoryError,
  stack traces, panics), which are actionable whatever their count,
- a new non-error template (weak evidence: workload changes also create them),
- an expected template that vanished although the span that writes it still ran
  (only when log lines carry a span id and spans are given): a code path that stopped
  half way, which is how an injected exception or early return often shows. Tested
  per run, and as "stopped": the last n runs wrote it 0 times (P = exp(-rate * n)),
  which needs no exact onset.
- a broken sequence (only when log lines carry a span id): in the reference, every
  span that wrote template A also wrote template B at least as often (B follows A:
  "calculate distance" after each "get rest ticket number"); in the window, spans
  that wrote A lack some of their B lines. An exception or early return caught
  inside a loop cuts the path after A for some items only, so neither A nor the
  span's runs vanish and only the pairing shows it (the event-pattern idea of Nezha,
  Yu et al., FSE 2023, reduced to pairs of templates within one span).

Printed collections ("[a, b, c]") are masked as one parameter, so one log statement
gives one template whatever the list length. With `history_start`, the case's own
recent lines join the reference (see detect_log_anomalies).

Every finding carries the observed count, the expected count from the baseline, the
window, and sample lines. Scores come from the Poisson surprise (-log10 p) less the
log10 of the number of templates tested, so a service with many templates does not
win by chance.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig
from scipy import stats

from detectors.records import Direction, Finding, FindingKind, LogRecord, Span

# One alternation, applied once per line (vectorised by pandas): UUIDs, long hex
# ids, IPs/versions/times/numbers. Order matters: longest shapes first.
_MASK = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b"
    r"|\d+(?:[.:,/\-]\d+)*"
)
# A printed collection ("[a, b, c]", "(x=1, y=2)") is one parameter of its log statement,
# however many items it holds; without this, one statement makes one template per length.
_LIST = re.compile(r"\[[^\[\]()]*,[^\[\]()]*\]|\([^\[\]()]*,[^\[\]()]*\)")
_ERROR_LEVELS = frozenset({"ERROR", "ERR", "FATAL", "CRITICAL", "CRIT", "ALERT", "EMERG", "PANIC", "SEVERE"})
_LEVEL_IN_LINE = re.compile(r"\b(TRACE|DEBUG|INFO|WARN(?:ING)?|ERROR|FATAL|CRITICAL|SEVERE|PANIC)\b")
_ERROR_WORDS = re.compile(
    r"(?i)\b(?:error|exception|fail(?:ed|ure|s)?|fatal|panic|refused|timed?[ -]?out|unavailable|"
    r"denied|killed|traceback|crash(?:ed)?|abort(?:ed)?)\b"
)
FATAL_PATTERNS: dict[str, re.Pattern[str]] = {
    "oom_killed": re.compile(r"OOMKilled|Out of memory: Kill(?:ed)? process|oom[-_]kill", re.I),
    "cuda_oom": re.compile(r"CUDA out of memory|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED"),
    "java_oom": re.compile(r"java\.lang\.OutOfMemoryError"),
    "stack_trace": re.compile(
        r"Traceback \(most recent call last\)|^\s+at [\w$.<>]+\([^)]*\)\s*$|Exception in thread \"|"
        r"^goroutine \d+ \[running\]"
    , re.M),
    "panic": re.compile(r"\bpanic: |segmentation fault|SIGSEGV|core dumped"),
}
_SAMPLES = 3
# Long enough for a Java exception message, which names the peer that failed near its end.
_SAMPLE_CHARS = 600


@dataclass(frozen=True)
class LogDetectorParams:
    min_count: int = 3  # fewer lines than this is never a finding
    min_ratio: float = 2.0  # rate-rise findings need at least this current/expected ratio
    min_surprise: float = 2.0  # -log10 p after the multiple-testing correction
    drain_sim_th: float = 0.5
    drain_depth: int = 4
    vanish_min_expected: float = 8.0  # an expected template must have been this frequent
    vanish_max_ratio: float = 0.2
    vanish_branch_rate: float = 0.5  # lines per run below which a vanished line is scaled down
    # broken sequences: B must follow A in at least this share of reference spans with A ...
    pair_min_hold: float = 0.95
    pair_min_lines: int = 8  # ... over at least this many reference lines of A
    pair_min_broken: int = 3  # window spans with fewer B than A needed for a finding


@dataclass
class LogBaseline:
    """Masked line shapes of the reference window, per service, and its length."""

    window_start: float
    window_end: float
    frame: pd.DataFrame  # columns: service, shape, level_error, span_id, n
    services: set[str] = field(default_factory=set)

    @property
    def duration(self) -> float:
        return max(self.window_end - self.window_start, 1.0)


def _frame(records: Sequence[LogRecord]) -> pd.DataFrame:
    if not records:
        return pd.DataFrame(
            {"ts": [], "service": [], "line": [], "level": [], "span_id": [], "trace_id": []}
        )
    return pd.DataFrame(
        {
            "ts": np.fromiter((r.ts for r in records), float, len(records)),
            "service": [r.service for r in records],
            "line": [r.line for r in records],
            "level": [r.level for r in records],
            "span_id": [r.labels.get("span_id") for r in records],
            "trace_id": [r.trace_id for r in records],
        }
    )


def _collapse_lists(shape: str) -> str:
    for _ in range(3):  # innermost first; three levels of nesting is plenty
        shape, n = _LIST.subn(lambda m: m.group(0)[0] + "<*>" + m.group(0)[-1], shape)
        if not n:
            break
    return shape


def _shapes(df: pd.DataFrame) -> pd.DataFrame:
    """Adds `shape` (masked line), `is_error`, `fatal` and the level parsed when missing.

    Regexes beyond the mask run on distinct shapes only (a few hundred, not thousands).
    """
    df = df.copy()
    shapes = pd.Series([_MASK.sub("<*>", x) for x in df["line"].tolist()], index=df.index)
    uniq = shapes.unique()
    df["shape"] = shapes.map(dict(zip(uniq, (_collapse_lists(u)[:400] for u in uniq))))
    level = df["level"].astype(object)
    missing = level.isna()
    if missing.any():
        parsed = df.loc[missing, "line"].str.extract(_LEVEL_IN_LINE, expand=False)
        level = level.where(~missing, parsed)
    level = level.fillna("").astype(str).str.upper()
    df["level"] = level
    uniq = pd.Series(df["shape"].unique())
    words = dict(zip(uniq, uniq.str.contains(_ERROR_WORDS)))
    fatal = {u: next((n for n, rx in FATAL_PATTERNS.items() if rx.search(u)), "") for u in uniq}
    # A line is an error when its level says so, or when an unlevelled line uses
    # error words; WARN/INFO lines that merely mention "failed" stay non-errors,
    # because applications log expected failures (bad user input) at those levels.
    df["is_error"] = level.isin(_ERROR_LEVELS) | ((level == "") & df["shape"].map(words).astype(bool))
    df["fatal"] = df["shape"].map(fatal)
    return df


def fit_log_baseline(records: Sequence[LogRecord], *, window_start: float | None = None,
                     window_end: float | None = None) -> LogBaseline:
    df = _shapes(_frame(records))
    if window_start is None:
        window_start = float(df["ts"].min()) if len(df) else 0.0
    if window_end is None:
        window_end = float(df["ts"].max()) if len(df) else 1.0
    return LogBaseline(window_start, window_end, df, set(df["service"].unique()))


def _miner(params: LogDetectorParams) -> TemplateMiner:
    cfg = TemplateMinerConfig()
    cfg.drain_sim_th = params.drain_sim_th
    cfg.drain_depth = params.drain_depth
    cfg.parametrize_numeric_tokens = True
    cfg.mask_prefix, cfg.mask_suffix = "<", ">"
    return TemplateMiner(persistence_handler=None, config=cfg)


def _templates(shapes: pd.Series, params: LogDetectorParams) -> tuple[dict[str, int], dict[int, str]]:
    """drain3 over distinct shapes of one service: shape -> cluster id, id -> template."""
    miner = _miner(params)
    ids: dict[str, int] = {}
    for shape in shapes.unique():
        ids[shape] = miner.add_log_message(shape)["cluster_id"]
    names = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return ids, names


def _surprise_up(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """-log10 P(X >= observed) for X ~ Poisson(expected)."""
    obs = np.asarray(observed, float)
    lam = np.maximum(np.asarray(expected, float), 1e-9)
    return -stats.poisson.logsf(obs - 1, lam) / math.log(10)


def _surprise_down(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    obs = np.asarray(observed, float)
    lam = np.maximum(np.asarray(expected, float), 1e-9)
    return -stats.poisson.logcdf(obs, lam) / math.log(10)


def score_from_surprise(surprise: float, n_tests: int, scale: float = 4.0) -> float:
    """-log10 p, Bonferroni-corrected (minus log10 of the tests made), mapped to [0, 1)."""
    corrected = surprise - math.log10(max(n_tests, 1))
    return 0.0 if corrected <= 0 else float(1.0 - math.exp(-corrected / scale))


@dataclass(frozen=True)
class _View:
    """One way to read the counts: `obs` lines in `cur_s` seconds against `ref` lines in `ref_s`.

    "fresh": the alert window against normal + recent history (what changed at the alert);
    "persistent": recent history + window against normal only (what already differed from
    normal before the alert). The persistent view is discounted by `weight`.
    """

    name: str
    weight: float


_FRESH, _PERSISTENT = _View("fresh", 1.0), _View("persistent", 0.5)


def _view_counts(n: np.ndarray, dur: tuple[float, float, float], view: _View
                 ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(observed, reference count, window seconds, reference seconds) of a view; n has columns normal/recent/current."""
    if view is _FRESH:
        return n[:, 2], n[:, 0] + n[:, 1], dur[2], dur[0] + dur[1]
    return n[:, 1] + n[:, 2], n[:, 0], dur[1] + dur[2], dur[0]


def _expected_lines(n: np.ndarray, dur: tuple[float, float, float], view: _View) -> np.ndarray:
    """Lines expected in a view's window. For the fresh view, the higher of the normal
    rate and the recent rate: a rise must be a rise against both, so errors that were
    already as frequent just before the alert are not news however rare they were in
    the (short, old) normal window. Half a line of prior for templates unseen in normal."""
    obs, ref, cur_s, ref_s = _view_counts(n, dur, view)
    if view is _FRESH:
        normal = (n[:, 0] + 0.5) * cur_s / max(dur[0], 1.0)
        recent = n[:, 1] * cur_s / dur[1] if dur[1] > 0 else np.zeros(len(n))
        return np.maximum(normal, recent)
    return (ref + 0.5) * cur_s / max(ref_s, 1.0)


def detect_log_anomalies(
    baseline: Sequence[LogRecord] | LogBaseline,
    current: Sequence[LogRecord],
    *,
    window_start: float,
    window_end: float,
    baseline_window: tuple[float, float] | None = None,
    baseline_spans: Sequence[Span] | None = None,
    current_spans: Sequence[Span] | None = None,
    params: LogDetectorParams = LogDetectorParams(),
    history_start: float | None = None,
) -> list[Finding]:
    """Findings (kind LOG_ANOMALY, `service` set) for lines of `current` in the window.

    `baseline` is the reference (a normal window) as records or a fitted `LogBaseline`.
    `baseline_spans`/`current_spans` (optional) enable the vanished-template check
    for lines that carry `labels["span_id"]`.
    `history_start` (optional): lines (and spans) of `current` from this time up to
    `window_start` are recent history. A normal window fitted once is short and old;
    what the system did just before the alert tells recurring background errors
    (present before and after) from what changed at the alert. Each test is then read
    two ways and the stronger reading is kept: the window against normal + history
    (full weight), and history + window against normal (half weight: it was already
    there before the alert, so it is less likely to be what the alert is about).
    """
    if window_end <= window_start:
        raise ValueError(f"window_end ({window_end}) must be after window_start ({window_start})")
    base = baseline if isinstance(baseline, LogBaseline) else fit_log_baseline(
        baseline, window_start=baseline_window[0] if baseline_window else None,
        window_end=baseline_window[1] if baseline_window else None)
    allc = _frame(current)
    recent_start = None
    if history_start is not None and len(allc):
        # History starts where the data do, if later than asked (a store keeps what it keeps).
        recent_start = max(history_start, float(allc["ts"].min()))
        if recent_start >= window_start:
            recent_start = None
    lo = window_start if recent_start is None else recent_start
    allc = allc[(allc["ts"] >= lo) & (allc["ts"] <= window_end)]
    if not (allc["ts"] >= window_start).any():
        return []
    allc = _shapes(allc)
    dur = (base.duration, window_start - lo, window_end - window_start)
    views = (_FRESH, _PERSISTENT) if recent_start is not None else (_FRESH,)
    grp_c = np.where(allc["ts"].to_numpy() >= window_start, 2, 1)
    both = pd.concat([base.frame.assign(_grp=0), allc.assign(_grp=grp_c)], ignore_index=True)
    both["_cur"] = both["_grp"] == 2

    ops = None
    if baseline_spans and current_spans:
        ops_all = _span_ops(current_spans)
        ops_all = ops_all[(ops_all["start"] >= lo) & (ops_all["start"] <= window_end)]
        ops = pd.concat([_span_ops(baseline_spans).assign(_grp=0),
                         ops_all.assign(_grp=np.where(ops_all["start"].to_numpy() >= window_start, 2, 1))],
                        ignore_index=True)
    ctx = _Ctx(window_start, window_end, dur, views, params)
    # drain3 per service (templates never span services); template ids made global.
    tid = np.zeros(len(both), np.int64)
    names: dict[int, str] = {}
    offset = 0
    for service, idx in both.groupby("service", sort=True).indices.items():
        ids, local = _templates(both["shape"].iloc[idx], params)
        tid[idx] = both["shape"].iloc[idx].map(ids).to_numpy(np.int64) + offset
        names.update({k + offset: v for k, v in local.items()})
        offset += max(local, default=0) + 1
    g = both.assign(tid=tid)
    counts = g.groupby(["tid", "_grp"]).size().unstack(fill_value=0).reindex(columns=[0, 1, 2], fill_value=0)
    tids = counts.index.to_numpy()
    service_of = g.drop_duplicates("tid").set_index("tid")["service"]
    err = g.groupby("tid")["is_error"].mean() >= 0.5
    gl = g[g["_grp"] > 0]
    first = gl.groupby(["tid", "_grp"])["ts"].min().unstack().reindex(columns=[1, 2])
    gc = gl[gl["_grp"] == 2]
    lines = gc.groupby("tid")["line"].agg(lambda x: x.head(_SAMPLES).str.slice(0, _SAMPLE_CHARS).tolist())
    rows = pd.DataFrame({
        "service": service_of.reindex(tids).to_numpy(), "tid": tids,
        "template": [names.get(int(t), "") for t in tids],
        "n0": counts[0].to_numpy(), "n1": counts[1].to_numpy(), "n2": counts[2].to_numpy(),
        "error": err.reindex(tids, fill_value=False).to_numpy(bool),
        "first1": first[1].reindex(tids).to_numpy(float), "first2": first[2].reindex(tids).to_numpy(float),
        "samples": [lines.get(t, []) for t in tids]})
    findings: list[Finding] = []
    # Service-wide error burst and fatal patterns, for services with any since the history began.
    loud = set(gl.loc[gl["is_error"] | (gl["fatal"] != ""), "service"])
    for service, grp in g[g["service"].isin(loud)].groupby("service", sort=True):
        findings += _service_level(service, grp, ctx)
    if ops is not None:
        findings += _vanished(g, names, ops, ctx)
    findings += _broken_sequences(g, names, ctx)
    findings += _template_findings(rows, ctx)
    return findings


@dataclass(frozen=True)
class _Ctx:
    ws: float
    we: float
    dur: tuple[float, float, float]  # seconds of normal, recent history, window
    views: tuple[_View, ...]
    params: LogDetectorParams

    def onset(self, view: _View, first1: float, first2: float) -> float:
        if view is _PERSISTENT and np.isfinite(first1):
            return float(first1)
        return float(first2) if np.isfinite(first2) else self.ws

    def ref_text(self, view: _View) -> str:
        return ("the normal window and the recent history" if view is _FRESH and self.dur[1] > 0
                else "the normal window")


def _template_findings(t: pd.DataFrame, ctx: _Ctx) -> list[Finding]:
    p = ctx.params
    n = t[["n0", "n1", "n2"]].to_numpy(float)
    # Score every view; keep, per template, the view with the best weighted score.
    best: dict[int, tuple[float, _View, float, float, float, float]] = {}
    live = np.zeros(len(t), bool)
    reads = []
    for v in ctx.views:
        obs, ref, cur_s, ref_s = _view_counts(n, ctx.dur, v)
        live |= obs >= p.min_count
        reads.append((v, obs, ref, cur_s, ref_s))
    n_tests = max(int(live.sum()), 1)
    for v, obs, ref, cur_s, ref_s in reads:
        expected = _expected_lines(n, ctx.dur, v)
        surprise = _surprise_up(obs, expected)
        for i in np.flatnonzero((obs >= p.min_count) & (obs >= p.min_ratio * expected)):
            s = float(surprise[i])
            if s - math.log10(n_tests) < p.min_surprise:
                continue
            if ref[i] > 0 and not t["error"].iat[i]:
                continue  # a busier info template is load, not a fault
            sc = score_from_surprise(s, n_tests)
            if ref[i] == 0 and not t["error"].iat[i]:
                sc *= 0.25  # workload changes also create new info lines
            sc *= v.weight
            if sc > best.get(i, (0.0,))[0]:
                best[i] = (sc, v, float(obs[i]), float(ref[i]), float(expected[i]), s)
    out = []
    for i, (sc, v, obs, ref, e, s) in best.items():
        row = t.iloc[i]
        stat = ("new_error_template" if row["error"] else "new_template") if ref == 0 else "error_template_rate"
        where = "in the window" if v is _FRESH else "since before the alert"
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{row['service']}: {row['template'][:160]}",
            value=obs, threshold=e * p.min_ratio, baseline=ref, window_start=ctx.ws, window_end=ctx.we,
            onset=ctx.onset(v, row["first1"], row["first2"]), score=sc, service=row["service"],
            direction=Direction.UP, statistic=stat,
            message=(f"{row['service']}: {stat.replace('_', ' ')} seen {int(obs)} times {where}, "
                     f"expected {e:.1f} from {ctx.ref_text(v)} ({int(ref)} lines)"),
            evidence={"template": row["template"], "count": int(obs), "baseline_count": int(ref),
                      "expected": e, "surprise": s, "samples": row["samples"], "error": bool(row["error"]),
                      "view": v.name},
        ))
    return out


def _service_level(service: str, g: pd.DataFrame, ctx: _Ctx) -> list[Finding]:
    p = ctx.params
    out: list[Finding] = []
    err = g[g["is_error"]]
    n = np.array([[float((err["_grp"] == k).sum()) for k in (0, 1, 2)]])
    best = None
    for v in ctx.views:
        obs, ref, cur_s, ref_s = (float(x[0]) if isinstance(x, np.ndarray) else x for x in _view_counts(n, ctx.dur, v))
        if obs < p.min_count:
            continue
        e = float(_expected_lines(n, ctx.dur, v)[0])
        s = float(_surprise_up(np.array([obs]), np.array([e]))[0])
        if obs / e < p.min_ratio or s < p.min_surprise:
            continue
        sc = score_from_surprise(s, 1) * 0.8 * v.weight
        if best is None or sc > best[0]:
            best = (sc, v, obs, ref, e, s)
    if best is not None:
        sc, v, obs, ref, e, s = best
        errs = err[err["_grp"] >= (1 if v is _PERSISTENT else 2)]
        where = "in the window" if v is _FRESH else "since before the alert"
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{service}: error lines", value=obs,
            threshold=e * p.min_ratio, baseline=ref, window_start=ctx.ws, window_end=ctx.we,
            onset=float(errs["ts"].min()), score=sc, service=service,
            direction=Direction.UP, statistic="error_burst",
            message=f"{service}: {int(obs)} error lines {where}, expected {e:.1f} from {ctx.ref_text(v)}",
            evidence={"count": int(obs), "baseline_count": int(ref), "expected": e, "surprise": s,
                      "view": v.name, "samples": errs["line"].head(_SAMPLES).str.slice(0, _SAMPLE_CHARS).tolist()},
        ))
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
                      "samples": hit_c["line"].head(_SAMPLES).str.slice(0, _SAMPLE_CHARS).tolist()},
        ))
    return out


def _span_ops(spans: Sequence[Span]) -> pd.DataFrame:
    return pd.DataFrame({"span_id": [s.span_id for s in spans], "operation": [s.operation for s in spans],
                         "service": [s.service for s in spans],
                         "start": np.fromiter((s.start_ns / 1e9 for s in spans), float, len(spans))})


def _vanished(g: pd.DataFrame, names: dict[int, str], ops: pd.DataFrame, ctx: _Ctx) -> list[Finding]:
    """Templates a span used to write, per run of that span, that stopped although it still runs.

    An injected exception or early return cuts a code path short: the lines after the
    cut stop while the operation keeps being called. Counted per run, so a change of
    load is not a vanishing. Two tests, the stronger kept per (operation, template):
    - fewer lines per run in the window than in the reference (see _View);
    - it stopped: the last n runs of the operation wrote it 0 times, where the runs
      before (and the normal window) wrote it lambda times per run; P = exp(-lambda n).
      This one does not need to know when the cut happened, so the normal stretch a
      window starts with (alert times are imprecise) does not hide it.
    """
    p = ctx.params
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
    # i -> (score, view, observed, reference lines, expected, runs, reference runs, surprise, onset)
    best: dict[int, tuple] = {}
    for v in ctx.views:
        obs, ref, _, _ = _view_counts(n, ctx.dur, v)
        r_obs, r_ref, _, _ = _view_counts(r, ctx.dur, v)
        ok = (r_ref > 0) & (r_obs > 0)
        expected = np.where(ok, ref / np.maximum(r_ref, 1) * r_obs, 0.0)
        hit = ok & (expected >= p.vanish_min_expected) & (obs <= p.vanish_max_ratio * expected)
        for i in np.flatnonzero(hit):
            s = float(_surprise_down(np.array([obs[i]]), np.array([expected[i]]))[0])
            sc = score_from_surprise(s, n_tests) * v.weight
            if sc > 0 and sc > best.get(i, (0.0,))[0]:
                best[i] = (sc, v, obs[i], ref[i], expected[i], r_obs[i], r_ref[i], s, None)
    for i, cand in _stopped(g, ops, per, n, r, n_tests, ctx).items():
        if cand[0] > best.get(i, (0.0,))[0]:
            best[i] = cand
    out: list[Finding] = []
    for i, (sc, v, obs, ref, expected, r_obs, r_ref, s, onset) in best.items():
        # A line written in fewer than half of its operation's runs sits on a branch some
        # inputs take; its absence may be a change of input mix rather than a cut path.
        sc = float(sc * min(1.0, expected / max(r_obs, 1.0) / p.vanish_branch_rate))
        op_key, tid = per.index[i]
        service, op = op_key.split("\t", 1)
        tmpl = names.get(int(tid), "")
        if onset is None:
            sel = ops[(ops["op"] == op_key) & (ops["_grp"] >= (1 if v is _PERSISTENT else 2))]
            onset = float(sel["start"].min()) if len(sel) else ctx.ws
            text = (f"{service}: {op} ran {int(r_obs)} times but wrote '{tmpl[:80]}' {int(obs)} times, "
                    f"expected {expected:.1f} ({int(ref)} per {int(r_ref)} runs in {ctx.ref_text(v)})")
        else:
            text = (f"{service}: '{tmpl[:80]}' stopped: the last {int(r_obs)} runs of {op} wrote it 0 times, "
                    f"expected {expected:.1f} ({int(ref)} per {int(r_ref)} runs before)")
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{service}: {tmpl[:160]}", value=float(obs),
            threshold=float(expected * p.vanish_max_ratio), baseline=float(ref),
            window_start=ctx.ws, window_end=ctx.we, onset=float(onset), score=sc, service=service,
            direction=Direction.DOWN, statistic="vanished_template", message=text,
            evidence={"operation": op, "template": tmpl, "count": int(obs), "expected": float(expected),
                      "runs": int(r_obs), "baseline_runs": int(r_ref), "surprise": s, "view": v.name},
        ))
    return out


def _stopped(g: pd.DataFrame, ops: pd.DataFrame, per: pd.DataFrame, n: np.ndarray, r: np.ndarray,
             n_tests: int, ctx: _Ctx) -> dict[int, tuple]:
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
    out: dict[int, tuple] = {}
    for i, n_after, onset in zip(after.index, after["size"].to_numpy(), after["min"].to_numpy()):
        k = int(total[i] - n_after)  # live runs up to the last one that wrote it
        lines_before = n[i].sum()
        runs_before = r[i, 0] + k
        if runs_before <= 0 or lines_before <= 0:
            continue
        expected = lines_before / runs_before * n_after
        if expected < p.vanish_min_expected:
            continue
        s = expected / math.log(10)  # -log10 P(0 lines | Poisson(expected))
        v = _FRESH if onset >= ctx.ws or len(ctx.views) == 1 else _PERSISTENT
        sc = score_from_surprise(s, n_tests) * v.weight
        if sc > 0:
            out[int(i)] = (sc, v, 0.0, lines_before, expected, float(n_after), runs_before, s, float(onset))
    return out


_WORD = re.compile(r"[A-Za-z][A-Za-z_]+")


def _statement(template: str, words: int = 8) -> str:
    """The log statement a template comes from: its first `words` constant words."""
    return " ".join(_WORD.findall(template.replace("<*>", " "))[:words])


def _broken_sequences(g: pd.DataFrame, names: dict[int, str], ctx: _Ctx) -> list[Finding]:
    """Pairs (A, B) of one service's templates where B followed every A per span and stopped doing so.

    Per span, count lines of each non-error template. In the reference spans (see
    _View), B "follows" A when nearly every span with A has at least as many B lines
    as A lines. In the tested spans, a span is broken when it has fewer B than A.
    The number of broken spans is tested against the reference share (binomial tail).
    The finding names B, the line that went missing, and its service.
    """
    p = ctx.params
    # Routine lines only: a warning reports an unusual condition, a branch by nature.
    g = g[g["span_id"].notna() & ~g["is_error"] & ~g["level"].isin(("WARN", "WARNING"))]
    if g.empty:
        return []
    out: list[Finding] = []
    # drain3 splits one log statement into several templates when its parameters vary
    # (a train number with another prefix, a list of another length), and the mix of
    # variants follows the workload; pairs are taken between statements instead, a
    # statement being the first constant words of the line.
    stmt = {t: _statement(n) for t, n in names.items()}
    g = g.assign(stmt=g["tid"].map(stmt))
    rep = g.drop_duplicates("stmt").set_index("stmt")["tid"]
    for service, sg in g.groupby("service", sort=True):
        m = sg.groupby(["span_id", "stmt"]).size().unstack(fill_value=0)
        if m.shape[1] < 2:
            continue
        grp = sg.groupby("span_id")["_grp"].max().reindex(m.index).to_numpy()
        first = sg.groupby("span_id")["ts"].min().reindex(m.index).to_numpy(float)
        x = m.to_numpy(np.int64)
        tids = rep.reindex(m.columns).to_numpy()
        has = x > 0
        # broken[s, a, b]: span s wrote A and fewer B than A; paired: as many B as A.
        broken = has[:, :, None] & (x[:, None, :] < x[:, :, None])
        paired = has[:, :, None] & (x[:, None, :] == x[:, :, None])
        best: dict[tuple[int, int], tuple] = {}
        reads = []
        for v in ctx.views:
            ref = grp == 0 if v is _PERSISTENT else grp < 2
            cur = grp >= 1 if v is _PERSISTENT else grp == 2
            n_ref = has[ref].sum(axis=0)[:, None].astype(float)
            b_ref = broken[ref].sum(axis=0).astype(float)
            # One B per A, span after span: the two lines are steps of one code path.
            # Support: A lines seen in the reference (a short normal window has few spans,
            # but a loop gives several A lines per span, each followed by its B).
            a_lines = x[ref].sum(axis=0)[:, None].astype(float)
            holds = (a_lines >= p.pair_min_lines) & (paired[ref].sum(axis=0) >= p.pair_min_hold * n_ref)
            np.fill_diagonal(holds, False)
            reads.append((v, ref, cur, n_ref, b_ref, holds))
        n_tests = max(sum(int(h.sum()) for *_, h in reads) // max(len(reads), 1), 1)
        for v, ref, cur, n_ref, b_ref, holds in reads:
            n_cur = has[cur].sum(axis=0)[:, None].astype(float)
            b_cur = broken[cur].sum(axis=0).astype(float)
            p0 = (b_ref + 0.5) / (n_ref + 1.0)
            hit = holds & (b_cur >= p.pair_min_broken) & (b_cur >= p.min_ratio * p0 * n_cur)
            for a, b in zip(*np.nonzero(hit)):
                s = float(-stats.binom.logsf(b_cur[a, b] - 1, n_cur[a, 0], p0[a, b]) / math.log(10))
                sc = score_from_surprise(s, n_tests) * v.weight
                if sc <= 0:
                    continue
                # Pairs sharing the missing line B are one finding; keep the strongest anchor.
                key = (int(tids[b]), 0)
                if sc > best.get(key, (0.0,))[0]:
                    spans_hit = cur & broken[:, a, b]
                    onset = float(first[spans_hit].min()) if spans_hit.any() else ctx.ws
                    best[key] = (sc, v, int(tids[a]), int(tids[b]), float(b_cur[a, b]), float(n_cur[a, 0]),
                                 float(b_ref[a, b]), float(n_ref[a, 0]), s, onset)
        for sc, v, ta, tb, k, n, kr, nr, s, onset in best.values():
            ta_s, tb_s = names.get(ta, ""), names.get(tb, "")
            where = "in the window" if v is _FRESH else "since before the alert"
            out.append(Finding(
                kind=FindingKind.LOG_ANOMALY, entity=f"{service}: {tb_s[:160]}", value=k,
                threshold=float(p.min_ratio * (kr + 0.5) / (nr + 1.0) * n), baseline=kr,
                window_start=ctx.ws, window_end=ctx.we, onset=onset, score=sc, service=service,
                direction=Direction.DOWN, statistic="broken_sequence",
                message=(f"{service}: '{tb_s[:80]}' no longer follows '{ta_s[:80]}' in {int(k)} of {int(n)} spans "
                         f"{where} (it did in all but {int(kr)} of {int(nr)} spans of {ctx.ref_text(v)})"),
                evidence={"template": tb_s, "after_template": ta_s, "broken_spans": int(k), "spans": int(n),
                          "baseline_broken_spans": int(kr), "baseline_spans": int(nr), "surprise": s,
                          "view": v.name},
            ))
    return out
