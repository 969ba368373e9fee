"""NAB perturbation variants: seeded, every window kept and still covering its own rows."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nab import NabFile
from benchmarks.nab_perturb import VARIANTS, make_variant, parse_overrides

N = 4000  # 5-minute rows, about 14 days
WINDOWS = ((1500, 1700), (3000, 3100))


def _file() -> NabFile:
    ts = np.datetime64("2014-04-01T00:00:00", "us") + np.arange(N) * np.timedelta64(300, "s")
    return NabFile("cat/f.csv", ts, np.arange(N, dtype=np.float64), None)


@pytest.mark.parametrize("kind", VARIANTS)
def test_each_variant_is_reproducible_ordered_and_keeps_every_window(kind: str):
    f = _file()
    v = make_variant(f, WINDOWS, kind, seed=1)
    again = make_variant(f, WINDOWS, kind, seed=1)
    assert np.array_equal(v.seconds, again.seconds) and np.array_equal(v.values, again.values)
    assert np.all(np.diff(v.seconds) > 0)
    assert len(v.windows) == len(WINDOWS)
    for (s, e), (s0, e0) in zip(v.windows, WINDOWS, strict=True):
        # the values are the original row numbers: a window holds only rows of its own
        assert s <= e and s0 <= v.values[s] and v.values[e] <= e0


def test_gaps_remove_rows_and_days_outside_the_windows_only():
    v = make_variant(_file(), WINDOWS, "gaps", seed=0)
    kept = v.values.astype(int)
    assert 0.05 * N <= N - len(kept) <= 0.5 * N
    for s, e in WINDOWS:
        assert set(range(s, e + 1)) <= set(kept.tolist())  # every row of a window stays
    assert np.diff(v.seconds).max() >= 86400.0  # at least one stretch of a day or more


def test_pauses_shift_time_by_whole_weeks_without_removing_a_row():
    f = _file()
    v = make_variant(f, WINDOWS, "pauses", seed=0)
    assert np.array_equal(v.values, f.values) and v.windows == WINDOWS
    shift = v.seconds - make_variant(f, WINDOWS, "original", seed=0).seconds
    assert shift[-1] >= 3 * 7 * 86400.0 and np.all(np.mod(shift, 7 * 86400.0) == 0.0)


def test_an_override_names_a_tuning_field():
    assert parse_overrides(["refractory_seconds=60000"]) == {"refractory_seconds": 60000.0}
    with pytest.raises(ValueError, match="AnomalyTuning field"):
        parse_overrides(["no_such=1"])
