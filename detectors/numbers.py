"""Numbers as messages print them, and medians without numpy's per-call overhead."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

NONFINITE = ("+Inf", "-Inf", "NaN")  # as Prometheus writes a sample value that is not a finite number


def nonfinite_text(x: float) -> str | None:
    """'+Inf', '-Inf' or 'NaN' for a number that is not finite (Python's 'inf' with a unit
    read "infs"); None for a finite one."""
    if math.isnan(x):
        return "NaN"
    return None if math.isfinite(x) else ("+Inf" if x > 0 else "-Inf")


def spelt(x: float, spec: str, unit: str = "") -> str:
    """`x` in `spec` ('.4g') followed by `unit`, or as Prometheus writes it when not finite."""
    return nonfinite_text(x) or f"{x:{spec}}{unit}"


def told_apart(value: float, threshold: float, spell: Callable[[float, int], str],
               digits: Iterable[int]) -> tuple[str, str]:
    """`value` and `threshold` spelt (`spell(x, digits)`) with the first of `digits` that
    tells them apart, else the last: a value just over its threshold printed equal to it
    ("psi 0.16 > 0.16") reads as a false alarm."""
    a = b = ""
    for d in digits:
        a, b = spell(value, d), spell(threshold, d)
        if a != b:
            break
    return a, b


def _percent(share: float, digits: int) -> str:
    """A share as a percentage, `digits` significant digits, no exponent: 55, 0.42, 100."""
    v = share * 100
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    return f"{v:.{max(0, digits - 1 - math.floor(math.log10(abs(v))))}f}"


def percent_pair(a: float, b: float) -> tuple[str, str]:
    """Two shares (0..1) as percentages without the sign: two significant digits, more where
    two different shares would print alike (0.414 and 0.409: "41.4", "40.9")."""
    return told_apart(a, b, _percent, range(2, 18))


def median(x: np.ndarray) -> float:
    """np.median's value (NaN when `x` is empty or holds one) from one sort: np.median's
    own overhead, ~50 us a call on small arrays, was 2.6 % of a Nezha case's CPU in the
    trace checks (two calls per tested group, ~760 a case)."""
    s = np.sort(x)
    if not len(s) or np.isnan(s[-1]):
        return math.nan
    m = len(s) // 2
    return float(s[m]) if len(s) % 2 else float((s[m - 1] + s[m]) / 2)  # as np.median averages the two
