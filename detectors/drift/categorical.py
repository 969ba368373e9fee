"""Categorical statistics over category counts.

Categories present in the current window but never seen in the reference get their
own bins, explicitly: PSI gives them Evidently's tiny floor share on the reference
side, Jensen-Shannon needs no floor, and the chi-square goodness-of-fit test (current
counts against reference proportions, as Evidently runs it) is infinite with p = 0,
because the reference gives those categories probability zero. They are also listed
by name in the quality findings, so a person sees "new category 'XL' in 4 % of rows"
rather than only a large number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from detectors.drift.numeric import jensen_shannon, psi
from detectors.numbers import percent_pair


@dataclass(frozen=True)
class AlignedCounts:
    categories: list[str]  # reference categories first, then new ones
    reference: np.ndarray  # int64
    current: np.ndarray  # int64
    n_new: int  # how many trailing categories are unseen in the reference


def align(
    ref_categories: list[str], ref_counts: np.ndarray, cur_categories: list[str], cur_counts: np.ndarray
) -> AlignedCounts:
    index = {c: i for i, c in enumerate(ref_categories)}
    new = [c for c in cur_categories if c not in index]
    cats = list(ref_categories) + new
    for c in new:
        index[c] = len(index)
    ref = np.zeros(len(cats), dtype=np.int64)
    ref[: len(ref_categories)] = ref_counts
    cur = np.zeros(len(cats), dtype=np.int64)
    if cur_categories:
        cur[np.fromiter((index[c] for c in cur_categories), dtype=np.int64, count=len(cur_categories))] = cur_counts
    return AlignedCounts(cats, ref, cur, len(new))


def chi_square(counts: AlignedCounts) -> tuple[float, float]:
    """Goodness-of-fit of current counts to reference proportions: Evidently's test.

    Same arithmetic as scipy.stats.chisquare(f_obs, f_exp); a category the reference
    never saw makes the statistic infinite and p = 0 (scipy gives the same, with a
    division warning).
    """
    n_ref = int(counts.reference.sum())
    n_cur = int(counts.current.sum())
    if n_ref == 0 or n_cur == 0:
        return float("nan"), float("nan")
    k = len(counts.categories)
    if k < 2:
        # One category on both sides: nothing can have moved.
        return 0.0, 1.0
    f_obs = counts.current.astype(np.float64)
    f_exp = counts.reference * (n_cur / n_ref)
    if counts.n_new and np.any(f_obs[f_exp == 0] > 0):
        return float("inf"), 0.0
    keep = f_exp > 0
    terms = (f_obs[keep] - f_exp[keep]) ** 2 / f_exp[keep]
    stat = float(terms.sum())
    return stat, float(special.chdtrc(k - 1, stat))  # what stats.chi2.sf calls, without its overhead


def shares(counts: AlignedCounts) -> tuple[np.ndarray, np.ndarray]:
    return counts.reference / counts.reference.sum(), counts.current / counts.current.sum()


MOVED_SHOWN = 3  # categories named in a drift message
MOVED_SHARE_OF_TOP = 0.25  # ... when their share moved at least this part of the top one's move


def moved_categories(counts: AlignedCounts, clip: int = 100) -> list[dict[str, Any]]:
    """The 1-3 categories whose share moved most (largest |current - reference| first), each
    with both shares, so a drift message says which city moved, not only that "city" did.
    Shares are of the rows with a category (missing ones left out, as the statistics do)."""
    n_ref, n_cur = int(counts.reference.sum()), int(counts.current.sum())
    if n_ref == 0 or n_cur == 0:
        return []
    r, c = shares(counts)
    delta = np.abs(c - r)
    top = np.argsort(-delta, kind="stable")[:MOVED_SHOWN]
    if len(top) == 0 or delta[top[0]] == 0:
        return []
    out: list[dict[str, Any]] = []
    for i in top:
        if delta[i] == 0 or delta[i] < MOVED_SHARE_OF_TOP * delta[top[0]]:
            break
        name = str(counts.categories[i])
        out.append({"category": name if len(name) <= clip else name[:clip] + "...",
                    "current_share": float(c[i]), "reference_share": float(r[i])})
    return out


def moved_text(moved: list[dict[str, Any]], unit: str = "%") -> str:
    """"'Lyon' 55% vs 25% in the reference, 'Paris' 12% vs 25%": two digits, more where two
    different shares would print alike."""
    parts = []
    for i, m in enumerate(moved):
        a, b = percent_pair(float(m["current_share"]), float(m["reference_share"]))
        parts.append(f"{m['category']!r} {a}{unit} vs {b}{unit}" + (" in the reference" if i == 0 else ""))
    return ", ".join(parts)


def categorical_statistics(counts: AlignedCounts) -> dict[str, float]:
    n_ref = int(counts.reference.sum())
    n_cur = int(counts.current.sum())
    if n_ref == 0 or n_cur == 0:
        return {"chi2": float("nan"), "chi2_pvalue": float("nan"), "js": float("nan"), "psi": float("nan")}
    chi2, p = chi_square(counts)
    r, c = shares(counts)
    return {"chi2": chi2, "chi2_pvalue": p, "js": jensen_shannon(r, c), "psi": psi(r, c)}


# Windows drawn under no change to measure a categorical statistic's own noise (`chance_level`):
# CHANCE_DRAWS, fewer (down to MIN_CHANCE_DRAWS) where categories x draws would pass _CHANCE_CELLS.
CHANCE_DRAWS = 200
MIN_CHANCE_DRAWS = 10
_CHANCE_CELLS = 2_000_000


def chance_level(reference_counts: np.ndarray, n_current: int, statistic: str, seed: int = 0,
                 stop_at: float = math.inf) -> float:
    """What `statistic` ("psi" or "js") reads with nothing changed: the largest of
    CHANCE_DRAWS windows of `n_current` rows and references of as many rows as this one, both
    drawn from the reference's shares. With many categories and few rows a window misses some
    and hits others twice: 200 cities and 1,000 rows read PSI 0.23 of pure noise. Seeded:
    the same data gives the same level. Stops once a draw reaches `stop_at` (the observed value:
    no need to know how far beyond it chance goes)."""
    ref = np.asarray(reference_counts, dtype=np.int64)
    n_ref = int(ref.sum())
    if n_ref == 0 or n_current == 0 or len(ref) < 2:
        return 0.0
    share = ref / n_ref
    measure = psi if statistic == "psi" else jensen_shannon
    rng = np.random.default_rng(seed)
    draws = min(CHANCE_DRAWS, max(MIN_CHANCE_DRAWS, _CHANCE_CELLS // len(ref)))
    level = 0.0
    for _ in range(draws):
        r, c = rng.multinomial(n_ref, share), rng.multinomial(n_current, share)
        level = max(level, measure(r / n_ref, c / n_current))
        if level >= stop_at:
            break
    return level
