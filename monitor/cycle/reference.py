"""Which reference a model's samples are judged against, profiled once and kept.

The training reference during cold start (and by default after it); with
`reference_after_cold_start: rolling`, production samples of the `rolling_reference`
before the window once cold start is over (never reaching back past the last deploy:
only the serving version's own samples), profiled once a day. A window under a day is
judged against the reference's rows from its time of day (reference_slices.py) when their
times are known: the rolling reference's always, the training file's with
`reference.timestamp_column`.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd

from alerts.policy import in_cold_start
from detectors.drift import ReferenceProfile, profile_reference
from detectors.drift.profile import ProfileReader
from detectors.drift.time_of_day import DaySpan, grid_phase, model_span, quarter_hour_sample, rows_per_quarter_hour
from monitor.config import ModelConfig, VigilConfig
from monitor.cycle.detect_drift import feature_specs
from monitor.cycle.plan import to_policy
from monitor.cycle.reference_slices import TimeOfDaySlices
from monitor.cycle.samples import SampleReader, own_rows, text_columns
from monitor.sources.cache import BoundedCache
from monitor.sources.samples import read_reference, to_epoch_seconds
from monitor.sources.spool import Spool
from monitor.store.repository import Store
from monitor.types import Window

log = logging.getLogger("vigil.reference")
# Training profiles kept in memory (without a spool: 512 MB; with one, a small share, as the
# spool maps a profile per cycle at no cost); beyond, mapped from the spool or read from the store.
PROFILE_CACHE_BYTES = 512 * 2**20
SPOOLED_PROFILE_CACHE_BYTES = 64 * 2**20


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime in ns, size) of the reference file, None when it cannot be read (then the
    read that follows says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _local_path(path: str, where: str) -> str:
    """A local path from a config value or a version tag. MLflow users tag datasets with
    their URI: s3://bucket/train.parquet was joined to the config folder and reported as
    ".../s3:/bucket/train.parquet does not exist". A file:// URI is its local path."""
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", path)
    if scheme is None:
        return path
    if scheme[1].lower() == "file":
        return unquote(urlsplit(path).path)
    raise ValueError(f"{where}: training reference {path} is a {scheme[1]} URL; Vigil reads local files "
                     "only: copy or mount it and give its local path")


class ReferenceChooser:
    def __init__(self, config: VigilConfig, store: Store, registry: Any, samples: SampleReader,
                 now: Callable[[], float], spool: Spool | None = None) -> None:
        self._config, self._store, self._registry = config, store, registry
        self._spool = spool
        self._samples, self._now = samples, now
        self._reader = ProfileReader()  # a spooled profile's parsed layout, kept between cycles
        # Rolling profiles, one per model: model -> ((version, "rolling:<day>:<since>"), profile).
        # A sweep's threads share the chooser; each model has its own entry, swapped whole
        # under the lock (rebuilding the dict without the model's old entry, on every thread
        # at the turn of a day, raised "dictionary changed size during iteration").
        self._rolling: dict[str, tuple[tuple[str, str], Any]] = {}
        self._rolling_lock = threading.Lock()
        # (model, version, path) -> profile
        self._training = BoundedCache(SPOOLED_PROFILE_CACHE_BYTES if spool else PROFILE_CACHE_BYTES)
        self._paths: dict[tuple[str, str], Path] = {}  # (model, version) -> training path
        self._stamps: dict[tuple[str, str, str], tuple[int, int]] = {}  # key -> file last profiled
        self._slices = TimeOfDaySlices()  # each model's reference rows with their times

    def training_path(self, m: ModelConfig, version: str | None) -> Path:
        path = m.reference.path
        if path is None and version is not None:
            path = self._registry.reference_path(m.registry, version, m.reference.tag)
        if path is None and version is None:  # no version to tag: "tag version None" sent people looking for one
            raise ValueError(
                f"models[{m.name}].reference: no training reference: the serving version is unknown (alias "
                f"{m.alias!r} of {m.registry!r} not set in the registry, or the registry unreachable); set "
                f"reference.path, or point the alias at a version tagged {m.reference.tag}"
            )
        if path is None:
            raise ValueError(
                f"models[{m.name}].reference: no training reference: set reference.path or tag version "
                f"{version} with {m.reference.tag}"
            )
        return self._config.resolve_path(_local_path(path, f"models[{m.name}].reference (version {version})"))

    def training(self, m: ModelConfig, version: str | None) -> tuple[Any, str]:
        """The serving version's training profile: memory, the spool, the store, else built once.
        Chosen once per (model, version): the path is not asked of the registry again."""
        pkey = (m.name, version or "-")
        path = self._paths.get(pkey)
        if path is None:
            path = self._paths[pkey] = self.training_path(m, version)
        key = (m.name, version or "-", str(path))
        # The file as it is now: a reference fixed in place (same path, same version) is
        # profiled again, not judged by the old file's profile for good.
        # A file that cannot be stat'ed now (its mount down, or cleaned up after profiling)
        # keeps the profile of the file as last seen: without it the model's drift was
        # "reference does not exist" on every cycle while its profile sat in memory or spool.
        stamp = _file_stamp(path) or self._stamps.get(key)
        hit = self._training.get((*key, stamp))
        if hit is not None:
            return hit, str(path)
        # The spool outlives the process: its key names the features too, so a changed
        # feature list is profiled afresh, never scored against an old profile.
        specs = feature_specs(m)
        skey = Spool.key(*key, [(s.name, s.type) for s in specs], "v1", *([stamp] if stamp else []))
        spooled = self._mapped(skey, m.name)
        if spooled is not None:
            self._seen(key, stamp)
            return spooled, str(path)
        # With a spool the store keeps no profiles: a profile is 1.7 MB at 50 features, 1.7 GB
        # for a thousand models, rebuilt from its file in about 0.1 s by whichever replica
        # needs it. Without one, the store is where a restart finds it.
        stored = self._store.profile(*key, newer_than=stamp[0] / 1e9 if stamp else None) \
            if self._spool is None else None
        profile = self._loaded(stored, m.name)
        if stored is None or profile is None or list(profile.features) != specs:  # none, or features changed
            profile = profile_reference(read_reference(path, [s.name for s in specs], text_columns(m)), specs)
            stored = profile.to_bytes()
            if self._spool is None:
                self._store.save_profile(*key, stored, self._now())
            else:
                self._spool.put("profiles", skey, stored)
        self._seen(key, stamp)
        self._training.put((*key, stamp), profile, len(stored))
        return profile, str(path)

    def _seen(self, key: tuple[str, str, str], stamp: tuple[int, int] | None) -> None:
        """Remember the file's stamp; the profile of the file it replaced leaves memory (the
        cache never evicts: held for good, it refused every later profile once full)."""
        if stamp is None:
            return
        old = self._stamps.get(key)
        self._stamps[key] = stamp
        if old is not None and old != stamp:
            self._training.discard((*key, old))

    @staticmethod
    def _loaded(buf: bytes | memoryview | None, model: str, where: str = "stored",
                read: Callable[[bytes | memoryview], ReferenceProfile] = ReferenceProfile.from_bytes,
                ) -> ReferenceProfile | None:
        """The profile in `buf`, or None when there is none or it does not load (damaged, cut
        short, or written by an older Vigil: `from_bytes` says so with a ValueError). It is then
        built again and overwritten, rather than the model's drift being `no_data` every cycle."""
        if buf is None:
            return None
        try:
            return read(buf)
        except ValueError as e:
            log.warning("%s profile unreadable, profiling the reference again", where,
                        extra={"model": model, "error": str(e)})
            return None

    def _mapped(self, skey: str, model: str) -> ReferenceProfile | None:
        """A profile the memory budget did not hold, mapped from the spool (no copy); the
        mapping goes when the cycle drops the profile. A damaged entry leaves the spool."""
        if self._spool is None:
            return None
        profile = self._loaded(self._spool.map("profiles", skey), model, "spooled",
                               lambda buf: self._reader.read(skey, buf))
        if profile is None:
            self._spool.discard("profiles", skey)
        return profile

    def _rolling_span(self, m: ModelConfig, w: Window) -> tuple[float, float] | None:
        """[since, end] of the rolling reference for the window, None when the training
        reference applies (configured so, or in cold start)."""
        p = self._config.policy_for(m)
        if p.reference_after_cold_start == "training":
            return None
        last = self._store.last_deploy(m.name, until=w.t)
        if in_cold_start(last.at if last else None, w.t, to_policy(p)):
            return None
        day = int(w.start // 86400)
        # Only the serving version's own samples: the window must not reach back past the
        # last deploy, or the previous model's outputs (and the inputs it was fed) become
        # the "normal" the new version is judged against.
        return max(day * 86400.0 - p.rolling_reference, last.at if last else float("-inf")), day * 86400.0

    def reference_frame(self, m: ModelConfig, version: str | None, w: Window) -> pd.DataFrame:
        """The rows the window's reference was profiled from (for the incident's drift report):
        the rolling reference's samples when the verdict used them, else the training file.
        Judged against the training file, a rolling model's page showed drift on every
        feature the rolling reference had accepted as the new normal, not what the alert said."""
        span = self._rolling_span(m, w)
        if span is not None:
            frame = self._rolling_frame(m, version, *span, self._config.policy_for(m).min_samples)
            if frame is not None:
                return self._same_time_of_day(m, w, frame, "_ts")
        frame = read_reference(self.training_path(m, version), text_columns=text_columns(m))
        return self._same_time_of_day(m, w, frame, m.reference.timestamp_column)

    def _same_time_of_day(self, m: ModelConfig, w: Window, frame: pd.DataFrame, column: str | None) -> pd.DataFrame:
        """The rows from the window's time of day when the verdict used them (as choose does:
        the same sample of them), so the page agrees with the alert; else all of them."""
        hours = self._hours(m, w)
        if hours is None or column is None or column not in frame.columns:
            return frame
        times = to_epoch_seconds(frame[column], where=f"models[{m.name}] reference column {column!r}")
        min_samples = self._config.policy_for(m).min_samples
        keep = hours.holds(times) & quarter_hour_sample(times, rows_per_quarter_hour(min_samples), grid_phase(m.name))
        return frame[keep] if keep.sum() >= min_samples else frame

    def choose(self, m: ModelConfig, version: str | None, w: Window) -> tuple[Any, str]:
        """The window's reference profile and where it comes from; under a day, the profile of
        the reference's rows from the window's hours of day when their times are known."""
        span = self._rolling_span(m, w)
        if span is not None:
            rolling, profile = self._rolling_profile(m, version, *span)
            if profile is not None:
                where = f"rolling {self._config.policy_for(m).rolling_reference / 86400:g} d of production samples"
                return self._time_of_day(m, w, ("rolling", *rolling), profile), where
        profile, path = self.training(m, version)
        key = ("training", version or "-", path, self._stamps.get((m.name, version or "-", path)))
        if self._hours(m, w) is not None and m.reference.timestamp_column and not self._slices.holds(m.name, key):
            self._hold_training(m, key, Path(path), m.reference.timestamp_column)
        return self._time_of_day(m, w, key, profile), path

    def _rolling_profile(self, m: ModelConfig, version: str | None, since: float, end: float
                         ) -> tuple[tuple[str, str], Any]:
        """The rolling reference's (key, profile), built once a day; None for the profile when
        the samples cannot make one (said once): the training reference then."""
        p = self._config.policy_for(m)
        key = (version or "-", f"rolling:{int(end // 86400)}:{since}")
        with self._rolling_lock:
            held = self._rolling.get(m.name)
        if held is None or held[0] != key:
            frame = self._rolling_frame(m, version, since, end, p.min_samples)
            held = (key, None if frame is None else profile_reference(frame, feature_specs(m)))
            if frame is not None and p.drift_match_time_of_day and "_ts" in frame.columns:
                names = [s.name for s in feature_specs(m)]
                self._slices.hold(m.name, ("rolling", *key), frame[names], frame["_ts"].to_numpy(),
                                  feature_specs(m), p.min_samples)
            with self._rolling_lock:
                self._rolling[m.name] = held
        return held

    def _hours(self, m: ModelConfig, w: Window) -> DaySpan | None:
        """The window's hours of day to match, None when the whole reference judges it."""
        return model_span(m.name, w.start, w.t) if self._config.policy_for(m).drift_match_time_of_day else None

    def _time_of_day(self, m: ModelConfig, w: Window, key: Hashable, whole: Any) -> Any:
        hours = self._hours(m, w)
        if hours is None:
            return whole
        return self._slices.judge_against(m.name, key, whole, feature_specs(m), hours,
                                          self._config.policy_for(m).min_samples)

    def _hold_training(self, m: ModelConfig, key: Hashable, path: Path, column: str) -> None:
        """The training rows with their times (`reference.timestamp_column`), read once per file."""
        names = [s.name for s in feature_specs(m)]
        frame = read_reference(path, [*names, column], text_columns(m))
        where = f"models[{m.name}].reference.timestamp_column"
        if column not in frame.columns:
            raise ValueError(f"{where}: column {column!r} not in the training reference {path} "
                             f"(columns: {', '.join(map(str, frame.columns[:20]))})")
        times = to_epoch_seconds(frame[column], where=f"{where} ({column!r} in {path})")
        self._slices.hold(m.name, key, frame[names], times, feature_specs(m), self._config.policy_for(m).min_samples)

    def _rolling_frame(self, m: ModelConfig, version: str | None, start: float, end: float, min_samples: int
                       ) -> pd.DataFrame | None:
        """`version`'s production samples in [start, end] (not a canary challenger's, when
        the samples name the version), or None (logged) when they cannot make a reference:
        too few rows, or a feature production has not logged (a feature just added to the
        config): then every feature would be blind, not just that one."""
        # A reader of its own ("rolling"): as the drift window's, this days-long read replaced the
        # window's and dropped its files from the spool, parsed again the next cycle.
        frame = own_rows(m, self._samples.window(m, start, end, "rolling"), version)
        absent = [s.name for s in feature_specs(m) if s.name not in frame.columns]
        if len(frame) < min_samples or absent:
            log.warning("rolling reference unusable, using the training reference",
                        extra={"model": m.name, "rows": len(frame), "absent_columns": absent[:10]})
            return None
        return frame
