"""What the performance stage reads: the logged predictions of a horizon, the labels that
arrived for them (files and the store), and the labelled reference. I/O and column
mapping only; the figures are detectors/performance's."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from detectors.drift.columns import category_label
from detectors.performance import CbpeState, fit_cbpe, realised_metrics
from detectors.performance.windows import (
    ID,
    LABEL,
    LABEL_TS,
    PRED,
    SCORE,
    TS,
    VERSION,
    few_positives,
    join_labels,
    scored,
    scored_classes,
)
from detectors.records import DeployEvent
from monitor.config import ModelConfig, VigilConfig
from monitor.config_performance import PerformanceConfig
from monitor.cycle.samples import SampleReader
from monitor.sources.labels import LabelFiles, empty_labels, id_strings, label_values
from monitor.sources.samples import SampleFileError, read_reference
from monitor.store.repository import Store


@dataclass(frozen=True)
class Reference:
    """The reference period's realised figures, its label count and the CBPE calibration."""

    metrics: dict[str, float | None]
    labels: int
    cbpe: CbpeState | None
    source: str
    note: str = ""  # reference labels left out, and why


def epoch(d: datetime) -> float:
    """A config datetime in epoch seconds; one written without a zone is UTC, as everywhere in vigil.yaml."""
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()


def versions_at(events: list[DeployEvent], alias: str, ts: np.ndarray, serving: str | None
                ) -> np.ndarray | str | None:
    """The version `alias` served at each of `ts`, from the deploy history (before its first
    move, the version that move replaced); `serving` when the history has none. Given the
    version serving now, a rolled-back version's predictions became the restored one's."""
    moves = [e for e in events if e.alias == alias]
    if not moves:
        return serving
    at = np.array([e.at for e in moves], dtype=float)
    names = np.array([moves[0].previous_version or moves[0].version, *(e.version for e in moves)], dtype=object)
    return names[np.searchsorted(at, ts, side="right")]


def prediction_frame(m: ModelConfig, perf: PerformanceConfig, raw: pd.DataFrame,
                     serving: str | np.ndarray | None, notes: list[str] | None = None) -> pd.DataFrame:
    """Samples -> (prediction_id, ts, prediction, score?, version); SampleFileError naming a missing column,
    or the columns that left no row usable. Rows left out (no id, a prediction that is no number)
    are counted in `notes`: never dropped unseen."""
    pred_col = perf.prediction_column or m.prediction_column or ""
    needed = [perf.id_column, pred_col] + ([perf.probability_column] if perf.probability_column else [])
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise SampleFileError(f"samples of {m.name}: performance needs column(s) {', '.join(map(repr, missing))} "
                              f"(columns: {', '.join(map(str, raw.columns[:20]))})")
    out = pd.DataFrame({ID: id_strings(raw[perf.id_column]), TS: raw["_ts"].to_numpy(dtype=float),
                        PRED: pd.to_numeric(raw[pred_col], errors="coerce").to_numpy(dtype=float)})
    if perf.probability_column:
        out[SCORE] = _probabilities(raw[perf.probability_column], notes)
    version = raw[perf.version_column] if perf.version_column in raw.columns else None
    # `serving`: one version, or (from the deploy history) the one serving at each row's time
    fallback = pd.Series(serving, index=raw.index, dtype=object).fillna("unknown")
    out[VERSION] = (fallback if version is None else version.astype(object).where(version.notna(), fallback)
                    ).map(category_label).to_numpy()
    pred = out[PRED].to_numpy()
    # Not a finite number, or for a classifier not a class (an inf or a probability read as class 0)
    fit = np.isin(pred, [0.0, 1.0, perf.positive_class]) if perf.task == "classification" else np.isfinite(pred)
    usable = raw[perf.id_column].notna().to_numpy() & fit
    if not usable.all():
        why = _left_out(raw, perf.id_column, pred_col, pred, fit)
        if not usable.any():
            raise SampleFileError(f"samples of {m.name}: none of {len(raw):,} rows has a usable prediction ({why})")
        if notes is not None:
            notes.append(f"{len(raw) - int(usable.sum()):,} of {len(raw):,} predictions left out ({why})")
    return out[usable]


def _probabilities(col: pd.Series, notes: list[str] | None) -> np.ndarray:
    """The probability column as numbers; one that is text or outside [0, 1] (a percentage)
    is NaN, left out of ROC AUC and the estimate, and counted: CBPE took 87.5 as a probability
    and showed an estimated accuracy of 56.9."""
    p = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = (col.notna().to_numpy() & np.isnan(p)) | (p < 0) | (p > 1)
    if bad.any():
        if notes is not None:
            notes.append(f"{int(bad.sum()):,} of {len(p):,} probabilities in {col.name!r} left out: not a number "
                         f"within [0, 1], e.g. {col[bad].iloc[0]!r}")
        p[bad] = np.nan
    return p


def _left_out(raw: pd.DataFrame, id_column: str, pred_col: str, pred: np.ndarray, fit: np.ndarray) -> str:
    """Why rows cannot be used, counted per reason, with an example of each bad prediction."""
    col = raw[pred_col]
    present = col.notna().to_numpy()
    text = present & np.isnan(pred)
    other = present & ~text & ~fit
    reasons = [f"{int(n):,} without {c!r}" for c, n in ((id_column, raw[id_column].isna().sum()),
                                                          (pred_col, (~present).sum())) if n]
    if text.any():
        reasons.append(f"{int(text.sum()):,} with {pred_col!r} not a number, e.g. {col[text].iloc[0]!r}")
    if other.any():
        reasons.append(f"{int(other.sum()):,} with {pred_col!r} not a finite number or not a class, "
                       f"e.g. {col[other].iloc[0]!r}")
    return "; ".join(reasons)


def _classes_only(labels: pd.DataFrame, perf: PerformanceConfig, column: str, notes: list[str] | None
                  ) -> pd.DataFrame:
    """A classifier's file labels that are a class (0, 1 or the positive class); the rest left
    out and counted (the API refuses them). Read as they were, a probability exported as the
    label (0.9) counted as the negative class and the figures were judged on garbage."""
    if perf.task != "classification" or len(labels) == 0:
        return labels
    ok = np.isin(labels[LABEL].to_numpy(dtype=float), [0.0, 1.0, perf.positive_class])
    if ok.all():
        return labels
    example = labels[LABEL].to_numpy()[~ok][0]
    why = f"expected a class in column {column!r}: 0 or 1 (or {perf.positive_class:g}), e.g. {example:g}"
    if not ok.any():
        raise SampleFileError(f"label files: none of {len(labels):,} labels is a class ({why})")
    if notes is not None:
        notes.append(f"{int((~ok).sum()):,} of {len(labels):,} labels in label files left out ({why})")
    return labels[ok].reset_index(drop=True)


def _reference_classes(labels: np.ndarray, perf: PerformanceConfig, where: str) -> tuple[np.ndarray, str]:
    """A classifier's reference labels with those that are no class made missing, and what
    was left out, said; none a class is a SampleFileError. Read as they were, a probability
    column named as the label read as the negative class: every window judged on garbage."""
    if perf.task != "classification":
        return labels, ""
    bad = ~np.isnan(labels) & ~np.isin(labels, [0.0, 1.0, perf.positive_class])
    if not bad.any():
        return labels, ""
    why = f"expected a class: 0 or 1 (or {perf.positive_class:g}), e.g. {labels[bad][0]:g}"
    if bad.sum() == np.count_nonzero(~np.isnan(labels)):
        raise SampleFileError(f"performance reference {where}: none of {int(bad.sum()):,} labels is a class ({why})")
    return np.where(bad, np.nan, labels), f"reference: {int(bad.sum()):,} of {len(labels):,} labels left out ({why})"


def _shared_ids(frame: pd.DataFrame) -> list[str]:
    """Ids logged by more than one version, said: a label joins the last prediction of an id
    only, so a version numbering its predictions from 0 again had the other's rows dropped
    from the join unsaid, and their labels joined to its own predictions."""
    if not frame[ID].duplicated().any():  # the usual case, answered without grouping
        return []
    versions = frame.groupby(ID, sort=False)[VERSION].nunique()
    shared = versions[versions > 1]
    if len(shared) == 0:
        return []
    return [f"{len(shared):,} prediction ids logged by more than one version (e.g. {shared.index[0]!r}): each joins "
            "the label of its last prediction only, the others left out; are the ids unique across versions?"]


class PerformanceInputs:
    """Per model: its label files (cached between cycles) and its fitted reference."""

    def __init__(self, config: VigilConfig, store: Store, samples: SampleReader) -> None:
        self._config, self._store, self._samples = config, store, samples
        self._files: dict[str, LabelFiles] = {}
        self._references: dict[str, tuple[float, Reference]] = {}

    def labels(self, m: ModelConfig, perf: PerformanceConfig, start: float, end: float,
               notes: list[str] | None = None, purpose: str = "horizon") -> pd.DataFrame:
        """Labels known in [start, end], oldest known first (the API's after the files' of the same time).
        `purpose`: the horizon or the reference refit, each reader's files kept for it (see
        SampleFiles.window): read under one name, each dropped the files the other read next,
        and every refit parsed the reference period's files again."""
        frames = []
        if perf.labels is not None:
            lf = perf.labels
            if m.name not in self._files:
                self._files[m.name] = LabelFiles(str(self._config.resolve_path(lf.path)), lf.id_column,
                                                 lf.label_column, lf.timestamp_column)
            read = self._files[m.name].window(start, end, notes, purpose)
            frames.append(_classes_only(read, perf, lf.label_column, notes))
        posted = self._store.labels.between(m.name, start, end)
        if posted:
            frames.append(pd.DataFrame({ID: [lb.prediction_id for lb in posted], LABEL: [lb.label for lb in posted],
                                        LABEL_TS: [lb.ts for lb in posted]}))
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_labels()
        # Oldest known first (join_labels keeps an id's last row): the label known last wins
        # whichever way it came, the API's on a tie. Files then API, a nightly export's
        # correction of a label posted in real time was ignored.
        return pd.concat(frames, ignore_index=True).sort_values(LABEL_TS, kind="stable", ignore_index=True)

    def predictions(self, m: ModelConfig, perf: PerformanceConfig, start: float, end: float,
                    serving: str | None, notes: list[str] | None = None, purpose: str = "performance"
                    ) -> pd.DataFrame:
        raw = self._samples.window(m, start, end, purpose)
        if len(raw) == 0:
            return pd.DataFrame(columns=[ID, TS, PRED, VERSION])
        made_by = versions_at(self._store.deploys(m.name, until=end), m.alias, raw["_ts"].to_numpy(dtype=float),
                              serving)
        frame = prediction_frame(m, perf, raw, made_by, notes)
        if notes is not None:
            notes.extend(_shared_ids(frame))
        return frame

    def reference(self, m: ModelConfig, perf: PerformanceConfig, t: float, serving: str | None) -> Reference:
        """The fitted reference, refitted at most once a window (a period's labels may still be arriving)."""
        hit = self._references.get(m.name)
        if hit is not None and t - hit[0] < perf.window and t >= hit[0]:
            return hit[1]
        ref = self._fit_reference(m, perf, t, serving)
        self._references[m.name] = (t, ref)
        return ref

    def _reference_rows(self, m: ModelConfig, perf: PerformanceConfig, t: float, serving: str | None
                        ) -> tuple[pd.DataFrame, str, str]:
        r = perf.reference
        left: list[str] = []  # labels that are no number: left out and said, not the whole refit failed
        if r.path is not None:
            path = self._config.resolve_path(r.path)
            # Rows by position: the labels below are picked by the frame's index, and a file saved
            # from a shuffled or split frame restores its own index (labels silently misaligned).
            df = read_reference(path).reset_index(drop=True)
            if r.label_column not in df.columns:
                raise SampleFileError(f"performance reference {path}: label column {r.label_column!r} not found")
            rows = prediction_frame(m, perf, df.assign(_ts=0.0, **({perf.id_column: np.arange(len(df))}
                                                                   if perf.id_column not in df.columns else {})),
                                    serving)
            labels = label_values(df[r.label_column], where=f"{path} column {r.label_column!r}", notes=left)
            labels, why = _reference_classes(labels, perf, f"{path} column {r.label_column!r}")
            return (rows.assign(**{LABEL: labels[rows.index.to_numpy()]}), str(path),
                    "; ".join(filter(None, [*(f"reference: {n}" for n in left), why])))
        assert r.start is not None and r.end is not None  # the config's validator says so
        start, end = epoch(r.start), epoch(r.end)
        joined = join_labels(self.predictions(m, perf, start, end, serving, purpose="performance reference"),
                             self.labels(m, perf, start, t, left, purpose="reference"))
        return (joined, f"predictions {r.start.isoformat()} .. {r.end.isoformat()}",
                "; ".join(f"reference: {n}" for n in left))

    def _fit_reference(self, m: ModelConfig, perf: PerformanceConfig, t: float, serving: str | None) -> Reference:
        rows, source, note = self._reference_rows(m, perf, t, serving)
        labelled = rows[rows[LABEL].notna()] if len(rows) else rows
        if len(labelled) < perf.min_labels:
            raise SampleFileError(f"performance reference ({source}) has {len(labelled)} labelled predictions, "
                                  f"fewer than min_labels {perf.min_labels}")
        pos = perf.positive_class
        y, p = labelled[LABEL].to_numpy(dtype=float), labelled[PRED].to_numpy(dtype=float)
        score = scored(labelled, perf.min_labels)  # ROC AUC and CBPE need min_labels rows with a probability
        if perf.task == "classification":
            y, p = (y == pos).astype(int), (p == pos).astype(int)
        metrics = realised_metrics(perf.task, y, p, score)
        if perf.task == "classification":  # the windows' floor: no reference recall read off 3 positives
            few_positives(metrics, int(p.sum()), (int(y.sum()), len(y)), perf.min_class_labels,
                          scored_classes(y, score))
        cbpe = None
        if perf.task == "classification" and perf.estimate and score is not None:
            cbpe = fit_cbpe(y, score)
        return Reference(metrics, len(labelled), cbpe, source, note)
