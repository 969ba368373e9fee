"""Production feature/prediction samples of a model: files on disk and rows posted to
the API, read as one frame."""
from __future__ import annotations

import pandas as pd

from correlators.causes import names_version
from detectors.drift.columns import category_label
from monitor.config import ModelConfig, VigilConfig
from monitor.sources.posted_samples import records_frame
from monitor.sources.samples import SampleFiles
from monitor.sources.spool import Spool
from monitor.store.repository import Store


def text_columns(m: ModelConfig) -> list[str]:
    """The columns a CSV must give as written: the categorical features (a zip code "02139"
    guessed a number became 2139, a category the reference never had)."""
    return [f.name for f in m.features if f.type == "categorical"]


def read_columns(m: ModelConfig) -> set[str]:
    """The sample columns the model's cycle reads: features, prediction, the canary's version
    column and performance's columns."""
    out = {f.name for f in m.features} | {m.samples.timestamp_column if m.samples else "timestamp"}
    perf, canary = m.performance, m.canary
    named = [m.prediction_column, canary.version_column if canary else None]
    if perf is not None:
        named += [perf.id_column, perf.prediction_column, perf.probability_column, perf.version_column]
    return out | {c for c in named if c}


class SampleReader:
    def __init__(self, config: VigilConfig, store: Store, spool: Spool | None = None) -> None:
        self._config = config
        self._store = store
        self._spool = spool
        self._files: dict[str, SampleFiles] = {}  # per model: the files' index is kept between cycles

    def files(self, m: ModelConfig) -> SampleFiles | None:
        if m.samples is None:
            return None
        if m.name not in self._files:
            self._files[m.name] = SampleFiles(self._config.resolve_path(m.samples.path), m.samples.timestamp_column,
                                              spool=self._spool, text_columns=text_columns(m))
        return self._files[m.name]

    def window(self, m: ModelConfig, start: float, end: float, purpose: str = "",
               unreadable: list[str] | None = None) -> pd.DataFrame:
        """Rows with start <= t <= end. `purpose` names a reader other than the drift window
        (the performance horizon, the rolling reference), whose files are kept for it too.
        `unreadable`: see SampleFiles.window (files left out, their errors listed there)."""
        frames = []
        files = self.files(m)
        if files is not None:
            frames.append(files.window(start, end, purpose, unreadable=unreadable))
        posted = self._store.samples(m.name, start, end)
        if posted:
            frames.append(records_frame(posted, read_columns(m)))
        frames = [f for f in frames if len(f)]
        if len(frames) == 1:  # each source gives a frame of its own, numbered from 0
            return frames[0]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def own_rows(m: ModelConfig, samples: pd.DataFrame, version: str | None) -> pd.DataFrame:
    """The rows `version` served, when the samples name the version of each row
    (`canary.version_column`): with a challenger taking a share of the traffic (or pulled
    since, its rows still in the window), a bad challenger judged as part of the champion
    made the champion look drifted, and its automatic rollback moved the wrong thing. A row
    counts when it names the version (`naming`); a row naming no version is kept (nothing
    says it is another's)."""
    c = getattr(m, "canary", None)  # a stand-in of a model (tests, tools) may have no canary at all
    column = c.version_column if c is not None else None
    if c is None or column is None or version is None or len(samples) == 0 or column not in samples.columns:
        return samples
    mine = ~samples[column].notna() | naming(m, samples[column], version)
    return samples if bool(mine.all()) else samples[mine].reset_index(drop=True)


def naming(m: ModelConfig, values: pd.Series, version: str) -> pd.Series:
    """Which of a version column's values name `version` (a mask): as the correlators read a
    label (correlators/causes.py `names_version`: as the registry writes it, "2"; as
    `performance.version_value` renders it, "resnet50-v2"; without that template, as its one
    number, "v2"), or as the canary's label value (`canary.version_value`). With only the
    performance template saying how the column writes a version, rows "resnet50-v2" were no
    version's: the canary compared no rows, and the champion's own drift read none of its own."""
    c, perf = getattr(m, "canary", None), getattr(m, "performance", None)
    template = perf.version_value if perf is not None else None
    label_value = c.label_value(version) if c is not None else version
    labels = values.map(category_label)  # 2.0 (a column with a gap) is "2"
    named = {v for v in labels.unique() if names_version(v, version, template) or v == label_value}
    return labels.isin(named)
