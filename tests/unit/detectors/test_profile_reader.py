"""A profile read again under one key (a spooled profile, every cycle) reuses its parsed
layout, and a blob that changed under that key is parsed afresh."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from detectors.drift import FeatureSpec, ReferenceProfile, compare, profile_reference
from detectors.drift.profile import ProfileReader

FEATURES = [FeatureSpec("x"), FeatureSpec("y"), FeatureSpec("c", "categorical")]


def _blob(seed: int, rows: int) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "y": rng.exponential(size=rows),
                          "c": rng.choice(["a", "b"], rows)})
    return profile_reference(frame, FEATURES).to_bytes()


def _same(a: ReferenceProfile, b: ReferenceProfile) -> bool:
    window = pd.DataFrame({"x": np.linspace(-2, 2, 300), "y": np.linspace(0, 3, 300), "c": ["a", "b", "c"] * 100})
    return repr([dataclasses.asdict(f) for f in compare(a, window)]) == \
        repr([dataclasses.asdict(f) for f in compare(b, window)])


def test_a_reread_profile_is_the_one_from_bytes_reads_and_a_changed_blob_is_parsed_again():
    reader = ProfileReader()
    first, longer = _blob(1, 500), _blob(3, 700)
    # Same size and header, one reference value changed in place: only the zip directory's CRC tells.
    value = ReferenceProfile.from_bytes(first).columns["x"].sorted_values[250]  # type: ignore[union-attr]
    at = first.index(value.tobytes())
    other = first[:at] + np.array(value + 1.5, dtype=value.dtype).tobytes() + first[at + value.itemsize:]
    assert len(other) == len(first)
    for _ in range(2):  # the second read wraps the kept layout
        got = reader.read("k", memoryview(first))
        assert _same(got, ReferenceProfile.from_bytes(first))
    for blob in (other, longer, first):
        assert _same(reader.read("k", memoryview(blob)), ReferenceProfile.from_bytes(blob))
    assert not _same(reader.read("k", other), ReferenceProfile.from_bytes(first))
