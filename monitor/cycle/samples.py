"""Production feature/prediction samples of a model: files on disk and rows posted to
the API, read as one frame."""
from __future__ import annotations

import pandas as pd

from monitor.config import ModelConfig, VigilConfig
from monitor.sources.samples import SampleFiles, records_frame
from monitor.sources.spool import Spool
from monitor.store.repository import Store


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
                                              spool=self._spool)
        return self._files[m.name]

    def window(self, m: ModelConfig, start: float, end: float, purpose: str = "") -> pd.DataFrame:
        """Rows with start <= t <= end. `purpose` names a reader other than the drift window
        (the performance horizon, the rolling reference), whose files are kept for it too."""
        frames = []
        files = self.files(m)
        if files is not None:
            frames.append(files.window(start, end, purpose))
        posted = self._store.samples(m.name, start, end)
        if posted:
            frames.append(records_frame(posted))
        frames = [f for f in frames if len(f)]
        if len(frames) == 1:  # each source gives a frame of its own, numbered from 0
            return frames[0]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
