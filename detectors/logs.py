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
  half way, which is how an injected exception or early return often shows.

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


@dataclass(frozen=True)
class LogDetectorParams:
    min_count: int = 3  # fewer lines than this is never a finding
    min_ratio: float = 2.0  # rate-rise findings need at least this current/expected ratio
    min_surprise: float = 2.0  # -log10 p after the multiple-testing correction
    drain_sim_th: float = 0.5
    drain_depth: int = 4
    vanish_min_expected: float = 8.0  # an expected template must have been this frequent
    vanish_max_ratio: float = 0.2


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


def _shapes(df: pd.DataFrame) -> pd.DataFrame:
    """Adds `shape` (masked line), `is_error`, `fatal` and the level parsed when missing.

    Regexes beyond the mask run on distinct shapes only (a few hundred, not thousands).
    """
    df = df.copy()
    df["shape"] = [_MASK.sub("<*>", x)[:400] for x in df["line"].tolist()]
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
    `window_start` are recent history and join the reference. A normal window fitted
    once is short and old; what the system did just before the alert tells recurring
    background errors (present before and after) from what changed at the alert.
    """
    if window_end <= window_start:
        raise ValueError(f"window_end ({window_end}) must be after window_start ({window_start})")
    base = baseline if isinstance(baseline, LogBaseline) else fit_log_baseline(
        baseline, window_start=baseline_window[0] if baseline_window else None,
        window_end=baseline_window[1] if baseline_window else None)
    allc = _frame(current)
    bdf, base_duration = base.frame, base.duration
    recent_start = None
    if history_start is not None and len(allc):
        # History starts where the data do, if later than asked (a store keeps what it keeps).
        recent_start = max(history_start, float(allc["ts"].min()))
        if recent_start >= window_start:
            recent_start = None
    lo = window_start if recent_start is None else recent_start
    allc = allc[(allc["ts"] >= lo) & (allc["ts"] <= window_end)]
    in_window = (allc["ts"] >= window_start).to_numpy()
    if not in_window.any():
        return []
    allc = _shapes(allc)
    cur = allc[in_window]
    if recent_start is not None:
        bdf = pd.concat([bdf, allc[~in_window][bdf.columns]], ignore_index=True)
        base_duration += window_start - recent_start
    scale = (window_end - window_start) / base_duration
    both = pd.concat([bdf.assign(_cur=False), cur.assign(_cur=True)], ignore_index=True)

    findings: list[Finding] = []
    rows: list[dict] = []
    ops_b = ops_c = None
    if baseline_spans and current_spans:
        ops_b, ops_all = _span_ops(baseline_spans), _span_ops(current_spans)
        ops_c = ops_all[(ops_all["start"] >= window_start) & (ops_all["start"] <= window_end)]
        if recent_start is not None:
            ops_b = pd.concat([ops_b, ops_all[(ops_all["start"] >= recent_start)
                                              & (ops_all["start"] < window_start)]], ignore_index=True)
    for service, grp in both.groupby("service", sort=True):
        ids, names = _templates(grp["shape"], params)
        tid = grp["shape"].map(ids)
        g = grp.assign(tid=tid.values)
        counts = g.groupby(["tid", "_cur"]).size().unstack(fill_value=0)
        for col in (False, True):
            if col not in counts:
                counts[col] = 0
        err = g.groupby("tid")["is_error"].mean() >= 0.5
        gc = g[g["_cur"]]
        first = gc.groupby("tid")["ts"].min()
        lines = gc.groupby("tid")["line"].agg(lambda x: x.head(_SAMPLES).str.slice(0, 300).tolist())
        for t, nb, nc in zip(counts.index, counts[False].to_numpy(), counts[True].to_numpy()):
            rows.append({"service": service, "tid": int(t), "template": names.get(int(t), ""),
                         "nb": int(nb), "nc": int(nc), "error": bool(err.get(t, False)),
                         "onset": float(first.get(t, window_start)), "samples": lines.get(t, [])})
        # Service-wide error burst and fatal patterns.
        findings += _service_level(service, g, scale, window_start, window_end, params)
        if ops_b is not None and ops_c is not None:
            findings += _vanished(service, g, names, ops_b[ops_b["service"] == service],
                                  ops_c[ops_c["service"] == service], window_start, window_end, params)
    if not rows:
        return findings
    t = pd.DataFrame(rows)
    t = t[t["nc"] >= params.min_count]
    n_tests = max(len(t), 1)
    expected = (t["nb"].to_numpy() + 0.5) * scale  # half a line of prior for unseen templates
    surprise = _surprise_up(t["nc"].to_numpy(), expected)
    ratio = t["nc"].to_numpy() / expected
    for (i, row), s, r, e in zip(t.iterrows(), surprise, ratio, expected):
        if r < params.min_ratio:
            continue
        sc = score_from_surprise(float(s), n_tests)
        if s - math.log10(n_tests) < params.min_surprise:
            continue
        if row["nb"] == 0:
            stat = "new_error_template" if row["error"] else "new_template"
            if not row["error"]:
                sc *= 0.25  # workload changes also create new info lines
        elif row["error"]:
            stat = "error_template_rate"
        else:
            continue  # a busier info template is load, not a fault
        lines = row["samples"]
        findings.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{row['service']}: {row['template'][:160]}",
            value=float(row["nc"]), threshold=float(e * params.min_ratio), baseline=float(row["nb"]),
            window_start=window_start, window_end=window_end,
            onset=row["onset"], score=sc, service=row["service"],
            direction=Direction.UP, statistic=stat,
            message=(f"{row['service']}: {stat.replace('_', ' ')} seen {row['nc']} times in the window, "
                     f"expected {e:.1f} from the baseline ({row['nb']} in {base_duration:.0f} s)"),
            evidence={"template": row["template"], "count": int(row["nc"]), "baseline_count": int(row["nb"]),
                      "expected": float(e), "surprise": float(s), "samples": lines,
                      "error": bool(row["error"])},
        ))
    return findings


def _service_level(service: str, g: pd.DataFrame, scale: float, ws: float, we: float,
                   params: LogDetectorParams) -> list[Finding]:
    out: list[Finding] = []
    b, c = g[~g["_cur"]], g[g["_cur"]]
    nb, nc = int(b["is_error"].sum()), int(c["is_error"].sum())
    if nc >= params.min_count:
        e = (nb + 0.5) * scale
        s = float(_surprise_up(np.array([nc]), np.array([e]))[0])
        if nc / e >= params.min_ratio and s >= params.min_surprise:
            errs = c[c["is_error"]]
            out.append(Finding(
                kind=FindingKind.LOG_ANOMALY, entity=f"{service}: error lines", value=float(nc),
                threshold=float(e * params.min_ratio), baseline=float(nb), window_start=ws, window_end=we,
                onset=float(errs["ts"].min()), score=score_from_surprise(s, 1) * 0.8, service=service,
                direction=Direction.UP, statistic="error_burst",
                message=f"{service}: {nc} error lines in the window, expected {e:.1f} from the baseline",
                evidence={"count": nc, "baseline_count": nb, "expected": e, "surprise": s,
                          "samples": errs["line"].head(_SAMPLES).str.slice(0, 300).tolist()},
            ))
    for name in c.loc[c["fatal"] != "", "fatal"].unique():
        hit_c = c[c["fatal"] == name]
        hb = int((b["fatal"] == name).sum())
        e = (hb + 0.5) * scale
        if len(hit_c) / e < params.min_ratio:
            continue  # the same pattern was already common in the normal window
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{service}: {name}", value=float(len(hit_c)),
            threshold=float(e * params.min_ratio), baseline=float(hb), window_start=ws, window_end=we,
            onset=float(hit_c["ts"].min()), score=0.9 if name != "stack_trace" else 0.6, service=service,
            direction=Direction.UP, statistic=f"fatal_{name}",
            message=f"{service}: {name.replace('_', ' ')} in {len(hit_c)} lines (baseline {hb})",
            evidence={"pattern": name, "count": int(len(hit_c)), "baseline_count": hb,
                      "samples": hit_c["line"].head(_SAMPLES).str.slice(0, 300).tolist()},
        ))
    return out


def _span_ops(spans: Sequence[Span]) -> pd.DataFrame:
    return pd.DataFrame({"span_id": [s.span_id for s in spans], "operation": [s.operation for s in spans],
                         "service": [s.service for s in spans],
                         "start": np.fromiter((s.start_ns / 1e9 for s in spans), float, len(spans))})


def _vanished(service: str, g: pd.DataFrame, names: dict[int, str], bs: pd.DataFrame, cs: pd.DataFrame,
              ws: float, we: float, params: LogDetectorParams) -> list[Finding]:
    """Templates a span used to write, per run of that span, that stopped although it still runs."""
    # Only non-error templates: an error line that stops is a recovery, not a fault.
    g = g[g["span_id"].notna() & ~g["is_error"]]
    if g.empty or bs.empty or cs.empty:
        return []
    out: list[Finding] = []
    runs_b = bs.groupby("operation").size()
    runs_c = cs.groupby("operation").size()
    op_of = pd.concat([bs, cs]).drop_duplicates("span_id").set_index("span_id")["operation"]
    g = g.assign(op=g["span_id"].map(op_of)).dropna(subset=["op"])
    per = g.groupby(["op", "tid", "_cur"]).size().unstack(fill_value=0)
    if False not in per:
        return []
    if True not in per:
        per[True] = 0
    n_tests = max(len(per), 1)
    for (op, tid), row in per.iterrows():
        rb, rc = runs_b.get(op, 0), runs_c.get(op, 0)
        if rb == 0 or rc == 0:
            continue
        expected = row[False] / rb * rc
        if expected < params.vanish_min_expected or row[True] > params.vanish_max_ratio * expected:
            continue
        s = float(_surprise_down(np.array([row[True]]), np.array([expected]))[0])
        sc = score_from_surprise(s, n_tests)
        if sc <= 0:
            continue
        tmpl = names.get(int(tid), "")
        out.append(Finding(
            kind=FindingKind.LOG_ANOMALY, entity=f"{service}: {tmpl[:160]}", value=float(row[True]),
            threshold=float(expected * params.vanish_max_ratio), baseline=float(row[False]),
            window_start=ws, window_end=we, onset=ws, score=sc, service=service,
            direction=Direction.DOWN, statistic="vanished_template",
            message=(f"{service}: {op} ran {rc} times but wrote '{tmpl[:80]}' {int(row[True])} times, "
                     f"expected {expected:.1f} ({int(row[False])} per {rb} runs in the baseline)"),
            evidence={"operation": op, "template": tmpl, "count": int(row[True]), "expected": float(expected),
                      "runs": int(rc), "baseline_runs": int(rb), "surprise": s},
        ))
    return out
