"""Whether the labels in so far are a fair sample of the window's predictions.

Labels seldom arrive at random: flagged transactions are investigated first, so a fraud
model's first labels are mostly of predicted fraud, and an accuracy read off them (0.65
against 0.96) is the accuracy of that class, not of the model. When the labelled rows'
predicted classes differ from all the window's by `MIN_SHIFT` or more, and by more than a
random sample of that size could (`MAX_PVALUE`), the window's realised figures say so.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

MIN_SHIFT = 0.2  # of the predicted-positive share, labelled rows against all rows
MAX_PVALUE = 0.001


def label_bias(predicted_all: np.ndarray, predicted_labelled: np.ndarray) -> dict[str, Any] | None:
    """The class the labels over-represent, with both shares, or None when the labelled rows'
    predictions could be a random sample of the window's (both 0/1 arrays)."""
    n_all, n_lab = len(predicted_all), len(predicted_labelled)
    if n_lab == 0 or n_lab >= n_all:
        return None
    q_all, q_lab = float(np.mean(predicted_all)), float(np.mean(predicted_labelled))
    if abs(q_lab - q_all) < MIN_SHIFT:
        return None
    # Drawn at random without replacement from the window: the share's standard error.
    se = math.sqrt(q_all * (1 - q_all) / n_lab * (n_all - n_lab) / (n_all - 1)) if n_all > 1 else 0.0
    p = 0.0 if se == 0 else float(special.ndtr(-abs(q_lab - q_all) / se) * 2)
    if p >= MAX_PVALUE:
        return None
    cls = 1 if q_lab > q_all else 0
    lab, every = (q_lab, q_all) if cls == 1 else (1 - q_lab, 1 - q_all)
    words = "cover mostly" if lab > 0.5 else "over-represent"
    return {"class": cls, "labelled_share": lab, "share": every, "labelled": n_lab, "predictions": n_all,
            "pvalue": p,
            "text": (f"labels so far {words} predicted class {cls} ({lab:.0%} of the {n_lab:,} labelled rows "
                     f"vs {every:.0%} of the {n_all:,} predictions)")}
