"""How a count is read: Poisson surprise, and the two views of a window with recent history.

Scores come from the Poisson surprise (-log10 p) less the log10 of the number of tests
made, so a service with many templates does not win by chance. With recent history
(lines between `history_start` and the window start), each test is read two ways and
the stronger reading kept: "fresh" (the window against normal + history, full weight)
and "persistent" (history + window against normal, half weight: it was already there
before the alert, so it is less likely to be what the alert is about).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from detectors.logs.params import LogParams


def surprise_up(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """-log10 P(X >= observed) for X ~ Poisson(expected)."""
    obs = np.asarray(observed, float)
    lam = np.maximum(np.asarray(expected, float), 1e-9)
    return -stats.poisson.logsf(obs - 1, lam) / math.log(10)


def surprise_down(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    obs = np.asarray(observed, float)
    lam = np.maximum(np.asarray(expected, float), 1e-9)
    return -stats.poisson.logcdf(obs, lam) / math.log(10)


def score_from_surprise(surprise: float, n_tests: int, scale: float = 4.0) -> float:
    """-log10 p, Bonferroni-corrected (minus log10 of the tests made), mapped to [0, 1)."""
    corrected = surprise - math.log10(max(n_tests, 1))
    return 0.0 if corrected <= 0 else float(1.0 - math.exp(-corrected / scale))


@dataclass(frozen=True)
class View:
    """One way to read the counts: `obs` lines in `cur_s` seconds against `ref` lines in `ref_s`.

    "fresh": the alert window against normal + recent history (what changed at the alert);
    "persistent": recent history + window against normal only (what already differed from
    normal before the alert). The persistent view is discounted by `weight`.
    """

    name: str
    weight: float


FRESH, PERSISTENT = View("fresh", 1.0), View("persistent", 0.5)


def view_counts(n: np.ndarray, dur: tuple[float, float, float], view: View
                 ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(observed, reference count, window seconds, reference seconds) of a view; n has columns normal/recent/current."""
    if view is FRESH:
        return n[:, 2], n[:, 0] + n[:, 1], dur[2], dur[0] + dur[1]
    return n[:, 1] + n[:, 2], n[:, 0], dur[1] + dur[2], dur[0]


def expected_lines(n: np.ndarray, dur: tuple[float, float, float], view: View) -> np.ndarray:
    """Lines expected in a view's window. For the fresh view, the higher of the normal
    rate and the recent rate: a rise must be a rise against both, so errors that were
    already as frequent just before the alert are not news however rare they were in
    the (short, old) normal window. Half a line of prior for templates unseen in normal,
    spread over all the fresh view's reference (normal + recent history): a line absent
    from both is rarer than its absence from a short normal window alone would say."""
    obs, ref, cur_s, ref_s = view_counts(n, dur, view)
    if view is FRESH:
        prior = 0.5 * max(dur[0], 1.0) / max(dur[0] + dur[1], 1.0)
        normal = (n[:, 0] + prior) * cur_s / max(dur[0], 1.0)
        recent = n[:, 1] * cur_s / dur[1] if dur[1] > 0 else np.zeros(len(n))
        return np.maximum(normal, recent)
    return (ref + 0.5) * cur_s / max(ref_s, 1.0)


@dataclass(frozen=True)
class Ctx:
    ws: float
    we: float
    dur: tuple[float, float, float]  # seconds of normal, recent history, window
    views: tuple[View, ...]
    params: LogParams

    def onset(self, view: View, first1: float, first2: float) -> float:
        if view is PERSISTENT and np.isfinite(first1):
            return float(first1)
        return float(first2) if np.isfinite(first2) else self.ws

    def ref_text(self, view: View) -> str:
        return ("the normal window and the recent history" if view is FRESH and self.dur[1] > 0
                else "the normal window")
