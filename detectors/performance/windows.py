"""Per version and window: predictions joined to their labels, realised and estimated
performance side by side, with the labels' coverage and delay.

Pure: frames in, `WindowPerformance` records out. Windows are aligned to multiples of
their length since the epoch, so a window's figures mean the same thing every cycle and
fill in as its labels arrive.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detectors.performance.label_sample import label_bias
from detectors.performance.noise import Support, classification_support, estimated_support, regression_support
from detectors.performance.realised import Task, realised_metrics

# The columns of the frames this module takes (the cycle renames the configured ones).
ID, TS, PRED, SCORE, VERSION = "prediction_id", "ts", "prediction", "score", "version"
LABEL, LABEL_TS = "label", "label_ts"

Estimator = Callable[[np.ndarray, np.ndarray], dict[str, float | None]]  # (predictions, scores) -> metrics
# (version, window start, content hash) -> its figures: a window whose predictions and labels
# did not change since the last cycle is not computed again (most of a horizon, most cycles).
Memo = dict[tuple[str, float, int, int], "WindowPerformance"]


@dataclass(frozen=True)
class WindowPerformance:
    """One version's predictions in [start, end): what the labels say and what was estimated."""

    version: str
    start: float
    end: float
    predictions: int
    labelled: int
    realised: dict[str, float | None] | None  # None: too few labels to say
    estimated: dict[str, float | None] | None  # None: no estimator for this task, or no scores
    delay_median_s: float | None = None
    delay_max_s: float | None = None
    note: str = ""  # why a figure is missing
    support: Support = field(default_factory=dict)  # what each realised figure was read from (noise.py)
    label_bias: dict[str, Any] | None = None  # labels so far mostly of one predicted class (label_sample.py)
    estimate_support: Support = field(default_factory=dict)  # ... and each estimated one stands for

    @property
    def coverage(self) -> float:
        return self.labelled / self.predictions if self.predictions else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "start": self.start, "end": self.end, "predictions": self.predictions,
                "labelled": self.labelled, "coverage": self.coverage, "realised": self.realised,
                "estimated": self.estimated, "delay_median_s": self.delay_median_s,
                "delay_max_s": self.delay_max_s, "note": self.note}


@dataclass(frozen=True)
class WindowSpec:
    task: Task
    length: float  # seconds
    min_labels: int
    positive: float = 1.0  # the positive class of a binary classifier
    estimator: Estimator | None = None
    min_class_labels: int = 30  # precision, recall, F1, ROC AUC: this many of the rows each reads
    versions: tuple[str, ...] = field(default=())  # all versions when empty


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Predictions with their label and label time (NaN where none arrived yet). A
    prediction id logged twice keeps its last row; a label for an unknown id is ignored."""
    preds = predictions.drop_duplicates(ID, keep="last")
    if len(labels) == 0:
        return preds.assign(**{LABEL: np.nan, LABEL_TS: np.nan})
    lab = labels[[ID, LABEL, LABEL_TS]].drop_duplicates(ID, keep="last")
    return preds.merge(lab, on=ID, how="left", validate="one_to_one")


def labels_matching_nothing(predictions: pd.DataFrame, labels: pd.DataFrame, joined: pd.DataFrame,
                            min_labels: int) -> str | None:
    """Why no label joins a prediction although both arrived, or None. Ids written one way in
    the samples and another in the labels ('00000001' vs the 1 a CSV reader makes of it)
    left every window at "0 labels, no realised figures yet", as if they were on their way.
    Labels landing later than the horizon (30 days, with 7 of horizon) match nothing either:
    the message asked only about the ids."""
    if len(labels) < min_labels or len(predictions) == 0 or joined[LABEL].notna().any():
        return None
    return (f"{labels[ID].nunique()} labels arrived in the horizon but none matches a logged prediction id "
            f"(labels e.g. {labels[ID].iloc[0]!r}, predictions e.g. {predictions[ID].iloc[0]!r}): are the ids "
            "written the same way in the samples and the labels (performance.id_column)? Or are they the labels "
            "of older predictions, landing later than performance.horizon?")


def window_starts(start: float, end: float, length: float) -> np.ndarray:
    """Starts of the aligned windows overlapping [start, end)."""
    first = np.floor(start / length) * length
    return np.arange(first, end, length)


def _binary(values: np.ndarray, positive: float) -> np.ndarray:
    return (np.asarray(values, dtype=float) == positive).astype(int)


def evaluate_window(rows: pd.DataFrame, version: str, bounds: tuple[float, float], spec: WindowSpec
                    ) -> WindowPerformance:
    """One version's window: realised figures when enough labels arrived, estimates always."""
    start, end = bounds
    labelled = rows[rows[LABEL].notna()]
    delay = (labelled[LABEL_TS] - labelled[TS]).to_numpy(dtype=float)
    delay_med = float(np.median(delay)) if len(delay) else None
    delay_max = float(np.max(delay)) if len(delay) else None
    estimated = None
    # An estimate over a handful of predictions is noise: the same floor as for labels, counted
    # on the predictions that carry a probability (the estimate reads nothing else).
    scores = scored(rows, spec.min_labels)
    estimate_notes: list[str] = []
    estimate_support: Support = {}
    if spec.estimator is not None and scores is not None:
        predicted = _binary(rows[PRED].to_numpy(), spec.positive)
        estimated = spec.estimator(predicted, scores)
        estimate_support = estimated_support(predicted, scores, estimated)  # before figures are withheld
        estimate_notes = _few_expected(estimated, predicted, scores, spec.min_class_labels)
    realised, note = None, ""
    support: Support = {}
    bias = None
    if len(labelled) < spec.min_labels:
        note = f"{len(labelled)} labels, fewer than the {spec.min_labels} needed: no realised figures yet"
    else:
        realised, note, support = _realised(labelled, spec)
        if spec.task == "classification":
            bias = label_bias(_binary(rows[PRED].to_numpy(), spec.positive),
                              _binary(labelled[PRED].to_numpy(), spec.positive))
    note = "; ".join(filter(None, [note, bias["text"] if bias else "", *estimate_notes]))
    return WindowPerformance(version, start, end, len(rows), len(labelled), realised, estimated, delay_med,
                             delay_max, note, support, bias, estimate_support)


def scored(rows: pd.DataFrame, min_rows: int) -> np.ndarray | None:
    """The probabilities of `rows` (NaN where none was logged), or None when fewer than
    `min_rows` have one: ROC AUC read off six scored rows was 0.0 and paged as a -100 % drop."""
    if SCORE not in rows:
        return None
    score = rows[SCORE].to_numpy(dtype=float)
    return score if int(np.count_nonzero(np.isfinite(score))) >= min_rows else None


def _realised(labelled: pd.DataFrame, spec: WindowSpec) -> tuple[dict[str, float | None], str, Support]:
    """The realised figures, why one is missing (too few labelled rows with a probability),
    and what each was read from."""
    if spec.task == "classification":
        score = scored(labelled, spec.min_labels)
        notes = []
        if score is None and SCORE in labelled:
            n = int(labelled[SCORE].notna().sum())
            notes.append(f"{n} labels with a probability, fewer than the {spec.min_labels} needed: no roc_auc")
        y_true, y_pred = _binary(labelled[LABEL].to_numpy(), spec.positive), _binary(labelled[PRED].to_numpy(),
                                                                                     spec.positive)
        figures = realised_metrics("classification", y_true, y_pred, score)
        notes.extend(few_positives(figures, int(y_pred.sum()), (int(y_true.sum()), len(y_true)),
                                   spec.min_class_labels, scored_classes(y_true, score)))
        return figures, "; ".join(notes), classification_support(y_true, y_pred, score)
    y, pred = labelled[LABEL].to_numpy(dtype=float), labelled[PRED].to_numpy(dtype=float)
    return realised_metrics("regression", y, pred), "", regression_support(y, pred)


def _few_expected(estimated: dict[str, float | None], predicted: np.ndarray, scores: np.ndarray, min_rows: int
                  ) -> list[str]:
    """The realised figures' floor (`few_positives`) for the estimate: predicted positives
    counted, positives expected as the sum of the probabilities. An estimated precision read
    off 4 positive predictions raised a performance_drop like a measured one."""
    finite = np.isfinite(scores)
    expected = int(round(float(scores[finite].sum())))
    notes = few_positives(estimated, int(predicted[finite].sum()), (expected, int(finite.sum())), min_rows)
    return [f"estimate: {n}" for n in notes]


def scored_classes(y_true: np.ndarray, score: np.ndarray | None) -> tuple[int, int] | None:
    """(positive, all) labels among the rows with a probability; None without probabilities."""
    if score is None:
        return None
    ok = np.isfinite(score)
    return int(y_true[ok].sum()), int(ok.sum())


def few_positives(figures: dict[str, float | None], predicted: int, labels: tuple[int, int], min_rows: int,
                  scored: tuple[int, int] | None = None) -> list[str]:
    """Precision is read off the predicted positives, recall off the positive labels, F1 off
    both, ROC AUC off both classes: with fewer than `min_rows` of them the figure is withheld
    (None) like a window with too few labels. A rare-positive model's hour with one missed
    positive read recall 0 and paged a -100 % drop. `labels`: (positive, all); `scored`: the
    same among the rows with a probability, the only ones ROC AUC reads (default `labels`)."""
    notes = []
    positive, total = labels
    auc_pos, auc_total = scored if scored is not None else labels
    if figures["roc_auc"] is not None and min(auc_pos, auc_total - auc_pos) < min_rows:
        figures["roc_auc"] = None
        notes.append(f"{auc_pos} positive and {auc_total - auc_pos} negative labels, fewer than the {min_rows} "
                     "needed of each: no roc_auc")
    if predicted < min_rows:
        figures["precision"] = figures["f1"] = None
        notes.append(f"{predicted} predicted positive, fewer than the {min_rows} needed: no precision or f1")
    if positive < min_rows:
        figures["recall"] = figures["f1"] = None
        notes.append(f"{positive} positive label(s), fewer than the {min_rows} needed: no recall or f1")
    return notes


def _content_key(*columns: np.ndarray) -> int:
    """Changes when a prediction or a label arrives or a label is corrected (a new value or
    time), row by row: counts and sums stayed the same when a label file was regenerated in
    place with corrections both ways, and the window kept the figures of the labels replaced."""
    return hash(tuple(np.ascontiguousarray(c).tobytes() for c in columns))


def evaluate_windows(joined: pd.DataFrame, start: float, end: float, spec: WindowSpec, memo: Memo | None = None
                     ) -> list[WindowPerformance]:
    """Every (version, aligned window) with predictions in [start, end), oldest first. With
    `memo` (kept by the caller for one spec), unchanged windows come from it."""
    if len(joined) == 0:
        return []
    ts = joined[TS].to_numpy(dtype=float)
    joined = joined[(ts >= start) & (ts < end)].sort_values(TS, kind="stable")
    version_of = joined[VERSION].astype(str).to_numpy()
    versions = spec.versions or tuple(sorted(set(version_of)))
    starts = window_starts(start, end, spec.length)
    edges = np.append(starts, starts[-1] + spec.length) if len(starts) else starts
    out: list[WindowPerformance] = []
    for v in versions:
        mine = joined[version_of == v]
        ts_mine = mine[TS].to_numpy(dtype=float)
        bounds = np.searchsorted(ts_mine, edges, "left")
        label, label_ts = mine[LABEL].to_numpy(dtype=float), mine[LABEL_TS].to_numpy(dtype=float)
        pred = mine[PRED].to_numpy(dtype=float)
        score = mine[SCORE].to_numpy(dtype=float) if SCORE in mine else pred[:0]
        for k, w0 in enumerate(starts):
            i, j = int(bounds[k]), int(bounds[k + 1])
            if j == i:
                continue
            window = (float(w0), float(w0 + spec.length))
            if memo is None:
                out.append(evaluate_window(mine.iloc[i:j], v, window, spec))
                continue
            key = (v, window[0], j - i, _content_key(label[i:j], label_ts[i:j], pred[i:j], score[i:j],
                                                    ts_mine[i:j]))
            if key not in memo:
                memo[key] = evaluate_window(mine.iloc[i:j], v, window, spec)
            out.append(memo[key])
    if memo is not None:  # forget windows that left the horizon
        for old in [k for k in memo if k[1] + spec.length <= start]:
            del memo[old]
    return sorted(out, key=lambda w: (w.start, w.version))
