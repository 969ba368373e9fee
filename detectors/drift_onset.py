"""When did a drift start? A change point in how surprising each current row is.

Window-level drift tests say *that* the window differs from the reference, not
*when* it began; but correlating with a deploy needs a time. Each current row is
mapped to the reference's bins (quantile bins for numbers, categories for
categories): its bin position u in [0, 1] and |2u - 1| (numbers) or its surprise -log p (categories). Under no
drift both are stationary, so the most likely start of the drift is the split that
maximises the standardised CUSUM of either sequence in time order.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift.columns import category_label, hashable_value

MIN_ROWS = 20
KOLMOGOROV_1PCT = 1.63


def _cusum_split(x: np.ndarray) -> tuple[int, float]:
    """(index of the first row of the later segment, standardised CUSUM strength)."""
    n = len(x)
    sd = x.std()
    if n < MIN_ROWS or sd < 1e-12:
        return 0, 0.0
    s = np.cumsum(x - x.mean())[:-1]
    k = int(np.argmax(np.abs(s)))
    return k + 1, float(np.abs(s[k]) / (sd * np.sqrt(n)))


def numeric_bins_position(values: np.ndarray, edges: np.ndarray, edge_counts: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Bin position u in [0, 1] (catches a shift) and its extremeness |2u - 1| (catches a
    change of spread). Quantile bins are equally likely, so -log p would carry nothing."""
    u = np.searchsorted(edges, values, side="left") / max(len(edges), 1)
    return u, np.abs(2 * u - 1)


def categorical_surprise(values: np.ndarray, categories: list[str], counts: np.ndarray) -> np.ndarray:
    p = dict(zip(categories, (counts + 0.5) / (counts.sum() + 0.5 * (len(categories) + 1)), strict=True))
    unseen = 0.5 / (counts.sum() + 0.5 * (len(categories) + 1))
    # Spelt as the profile counted them (category_label): str(3.0) is "3.0", which made every
    # row of an integer column that pandas turned float "unseen", and the onset was lost.
    # Labelled once per distinct value, not per row (a window holds 100,000 rows of a few values).
    series = pd.Series(values, dtype=object)
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=False)
    except TypeError:  # unhashable values (a parquet list column): by their text, as the profile counted them
        codes, uniques = pd.factorize(series.map(hashable_value), use_na_sentinel=False)
    per_value = np.array([p.get(category_label(v), unseen) for v in uniques], dtype=float)
    return -np.log(per_value[codes]) if len(codes) else np.zeros(0)


def estimate_onset(times: np.ndarray, sequences: list[np.ndarray]) -> float | None:
    """Onset time from the strongest change point among `sequences` (aligned with `times`)."""
    order = np.argsort(times, kind="stable")
    t = times[order]
    best_k, best = 0, 0.0
    for seq in sequences:
        k, strength = _cusum_split(np.asarray(seq, dtype=float)[order])
        if strength > best:
            best_k, best = k, strength
    # sup |Brownian bridge| exceeds 1.63 with probability 1 % (Kolmogorov): below that there
    # is no clear change inside the window, so the drift predates it.
    if best < KOLMOGOROV_1PCT:
        return None
    return float(t[best_k])
