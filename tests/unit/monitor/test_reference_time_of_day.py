"""A feature with a daily cycle is judged against the reference rows from the window's
time of day, not the whole day's (a window only ever holds part of the day: every hour warned)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.records import FindingKind
from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry

DAY, HOUR = 86400.0, 3600.0
SHIFTED_HOUR = 5  # cycles at T0 + k hours; the one at k = 5 sees its window's mean moved by 1 sd


def daily(ts: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """x follows the hour of day (sd 1 around a 3-sd swing); the device mix too."""
    phase = 2 * np.pi * (ts % DAY) / DAY
    x = 3 * np.sin(phase) + rng.normal(0, 1, len(ts))
    ios = rng.random(len(ts)) < 0.5 + 0.4 * np.cos(phase)
    return pd.DataFrame({"timestamp": ts, "x": x, "device": np.where(ios, "ios", "android")})


def setup(tmp_path, *, shift_at: float | None = None, policy: dict | None = None, reference: str = "rolling",
          train_times: bool = True, ts_column: str = "served_at"):
    rng = np.random.default_rng(7)
    ts = np.arange(T0 - 3 * DAY, T0 + DAY, 1.0)  # 1,800 rows a window: past the noise of small samples
    df = daily(ts, rng)
    if shift_at is not None:
        df.loc[(ts > shift_at - 1800) & (ts <= shift_at), "x"] += 1.0
    (tmp_path / "samples").mkdir(parents=True)
    df.to_parquet(tmp_path / "samples" / "s.parquet")
    train = daily(np.arange(T0 - 40 * DAY, T0 - 39 * DAY, 1.0), rng)
    train.rename(columns={"timestamp": "served_at"}).to_parquet(tmp_path / "train.parquet")
    ref = {"path": "train.parquet", **({"timestamp_column": ts_column} if train_times else {})}
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x", {"name": "device", "type": "categorical"}],
        samples={"path": "samples/", "timestamp_column": "timestamp"}, reference=ref)],
        policy={"reference_after_cold_start": reference, "rolling_reference": "1d", "cold_start": "1d",
                **(policy or {})})
    return make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(registered_at=T0 - 30 * DAY),
                      notifiers={})


def drift_hours(vigil, hours: range = range(24)) -> dict[int, list]:
    out: dict[int, list] = {}
    for k in hours:
        found = [f for f in vigil.run_cycle(MODEL, T0 + k * HOUR).findings if f.kind == FindingKind.FEATURE_DRIFT]
        if found:
            out[k] = found
    return out


def test_a_daily_cycle_unchanged_warns_at_no_hour_against_the_rolling_reference(tmp_path):
    vigil = setup(tmp_path)
    assert drift_hours(vigil) == {}


def test_a_shift_at_one_hour_is_still_warned_in_that_hour_and_says_which_rows(tmp_path):
    vigil = setup(tmp_path, shift_at=T0 + SHIFTED_HOUR * HOUR)
    hours = drift_hours(vigil, range(SHIFTED_HOUR - 2, SHIFTED_HOUR + 3))
    assert list(hours) == [SHIFTED_HOUR]
    (f,) = hours[SHIFTED_HOUR]
    assert f.entity == "x"
    # 13:00 UTC: 12:30-13:00, +-1 h, out to the model's quarter hours (its grid 14 minutes on)
    assert f.evidence["reference_rows"] == "11:29-14:14 UTC"
    assert "against the reference's 11:29-14:14 UTC rows" in f.message


def test_the_training_reference_is_sliced_when_its_timestamp_column_is_named(tmp_path):
    vigil = setup(tmp_path, reference="training")
    assert drift_hours(vigil) == {}


def test_switched_off_or_without_times_the_whole_reference_judges_as_before(tmp_path):
    off = drift_hours(setup(tmp_path / "off", policy={"drift_match_time_of_day": False}), range(6))
    assert list(off) == list(range(6))
    untimed = drift_hours(setup(tmp_path / "untimed", reference="training", train_times=False), range(6))
    assert list(untimed) == list(range(6))
    said = [f for fs in [*off.values(), *untimed.values()] for f in fs]
    assert not any("reference_rows" in f.evidence or "against" in f.message for f in said)


def test_a_timestamp_column_the_training_file_lacks_names_the_field(tmp_path):
    vigil = setup(tmp_path, reference="training", ts_column="served")
    report = vigil.run_cycle(MODEL, T0)
    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA]
    assert "models[recommender].reference.timestamp_column: column 'served' not in the training reference" \
        in gap.message


def test_the_drift_report_page_shows_the_reference_rows_the_verdict_used(tmp_path, monkeypatch):
    """The alert judged the window against the reference's 11:29-14:14 rows; the incident's
    Evidently page compared it with the whole day and showed every daily feature drifting.
    The page holds the very rows the verdict used: 400 of each quarter hour's 900."""
    from monitor.cycle import drift_report

    pages: list[pd.DataFrame] = []
    monkeypatch.setattr(drift_report, "render_drift_report",
                        lambda ref, cur, cols, **kw: pages.append(ref) or "<html/>")
    vigil = setup(tmp_path, shift_at=T0 + SHIFTED_HOUR * HOUR)
    assert [f.entity for f in vigil.run_cycle(MODEL, T0 + SHIFTED_HOUR * HOUR).findings
            if f.kind == FindingKind.FEATURE_DRIFT] == ["x"]
    (reference,) = pages
    of_day = reference["timestamp"].to_numpy() % DAY / HOUR
    assert len(reference) == 4400 and of_day.min() >= 11 + 29 / 60 and of_day.max() < 14 + 14 / 60
