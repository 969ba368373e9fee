"""Log lines as one table of shapes: masked once, vectorised, then judged on distinct shapes.

Lines are masked (ids, numbers, hex, timestamps) with one vectorised pass, so drain3
(templates.py) only sees the few hundred distinct shapes, not every line. Printed
collections ("[a, b, c]") are masked as one parameter, so one log statement gives one
template whatever the list length. A line is an error when its level says so, or when
an unlevelled line uses error words; well-known fatal patterns (OOMKilled, CUDA out of
memory, Java OutOfMemoryError, stack traces, panics) are marked by name.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from detectors.records import LogRecord
from detectors.tables import Kind

# One alternation, applied once per line: UUIDs, long hex ids, IPs/versions/times/numbers.
# Order matters: longest shapes first. Every alternative starts with a hex digit, so the
# leading lookahead rejects any other position before trying the three (lines average
# ~570 characters of stack traces here: 2.2x faster, the same masks); a hex id holds a
# digit, the first found after its leading letters.
_MASK = re.compile(
    r"(?=[0-9a-fA-F])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b(?=[a-fA-F]*\d)[0-9a-fA-F]{12,}\b"
    r"|\d+(?:[.:,/\-]\d+)*)"
)
# A printed collection ("[a, b, c]", "(x=1, y=2)") is one parameter of its log statement,
# however many items it holds; without this, one statement makes one template per length.
# Possessive runs (up to the first comma, then to the closing bracket): the same matches
# as `\[[^\[\]()]*,[^\[\]()]*\]`, whose backtracking retried every comma of an unclosed
# list to the end of the line (a line Loki truncated: minutes for one 300 KB line).
_LIST = re.compile(r"\[[^\[\](),]*+,[^\[\]()]*+\]|\([^\[\](),]*+,[^\[\]()]*+\)")
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
SAMPLES = 3
# Long enough for a Java exception message, which names the peer that failed near its end.
SAMPLE_CHARS = 600
# What the checks read of the reference's lines: the fitted state keeps these columns
# (not the text: samples are only ever shown from the current window).
REFERENCE_COLUMNS: dict[str, Kind] = {
    "ts": "float", "service": "str", "level": "str", "span_id": "str", "shape": "str", "is_error": "bool",
    "fatal": "str",
}


def line_frame(records: Sequence[LogRecord]) -> pd.DataFrame:
    if not records:  # typed columns: string operations on an empty frame must still work
        text = {k: pd.Series([], dtype=object) for k in ("service", "line", "level", "span_id", "trace_id")}
        return pd.DataFrame({"ts": pd.Series([], dtype=np.float64), **text})
    return pd.DataFrame(
        {
            "ts": np.fromiter((r.ts for r in records), float, len(records)),
            "service": [r.service for r in records],
            # NUL (a binary payload dumped into a log) as U+FFFD: PostgreSQL's text columns
            # refuse NUL, and a template, a sample or the incident title made of it would
            # make the incident impossible to store, cycle after cycle.
            "line": [r.line.replace("\x00", "\ufffd") if "\x00" in r.line else r.line for r in records],
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


def shapes(df: pd.DataFrame) -> pd.DataFrame:
    """Adds `shape` (masked line), `is_error`, `fatal` and the level parsed when missing.

    Regexes beyond the mask run on distinct shapes only (a few hundred, not thousands).
    """
    df = df.copy()
    masked = pd.Series([_MASK.sub("<*>", x) for x in df["line"].tolist()], index=df.index, dtype=object)
    uniq = masked.unique()
    df["shape"] = masked.map(dict(zip(uniq, (_collapse_lists(u)[:400] for u in uniq), strict=True)))
    level = df["level"].astype(object)
    missing = level.isna()
    if missing.any():
        parsed = df.loc[missing, "line"].str.extract(_LEVEL_IN_LINE, expand=False)
        level = level.where(~missing, parsed)
    level = level.fillna("").astype(str).str.upper()
    df["level"] = level
    uniq = pd.Series(df["shape"].unique(), dtype=object)
    words = dict(zip(uniq, uniq.str.contains(_ERROR_WORDS), strict=True))
    fatal = {u: next((n for n, rx in FATAL_PATTERNS.items() if rx.search(u)), "") for u in uniq}
    # A line is an error when its level says so, or when an unlevelled line uses
    # error words; WARN/INFO lines that merely mention "failed" stay non-errors,
    # because applications log expected failures (bad user input) at those levels.
    df["is_error"] = level.isin(_ERROR_LEVELS) | ((level == "") & df["shape"].map(words).astype(bool))
    df["fatal"] = df["shape"].map(fatal)
    return df
