"""Production feature/prediction samples of a model: files on disk and rows posted to
the API, read as one frame."""
from __future__ import annotations

import pandas as pd

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
            frames.append(records_frame(posted))
        frames = [f for f in frames if len(f)]
        if len(frames) == 1:  # each source gives a frame of its own, numbered from 0
            return frames[0]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def own_rows(m: ModelConfig, samples: pd.DataFrame, version: str | None) -> pd.DataFrame:
    """The rows `version` served, when the samples name the version of each row
    (`canary.version_column`): with a challenger taking a share of the traffic (or pulled
    since, its rows still in the window), a bad challenger judged as part of the champion
    made the champion look drifted, and its automatic rollback moved the wrong thing. The
    registry's version ("2") or the metrics' label value ("v2") both count; a row naming
    no version is kept (nothing says it is another's)."""
    c = getattr(m, "canary", None)  # a stand-in of a model (tests, tools) may have no canary at all
    column = c.version_column if c is not None else None
    if c is None or column is None or version is None or len(samples) == 0 or column not in samples.columns:
        return samples
    named = samples[column].notna()
    mine = ~named | samples[column].map(category_label).isin({version, c.label_value(version)})
    return samples if bool(mine.all()) else samples[mine].reset_index(drop=True)
