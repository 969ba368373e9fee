"""Which reference drift is measured against: the version's training reference during
cold start, then (when configured) a rolling window of production samples."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.records import FindingKind
from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry

DAY = 86400.0


def write_samples(tmp_path, start: float, end: float, mean: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = np.arange(start, end, 10.0)
    (tmp_path / "samples").mkdir(exist_ok=True)
    pd.DataFrame({"timestamp": ts, "x": rng.normal(mean, 1, len(ts))}).to_parquet(
        tmp_path / "samples" / f"{int(start)}.parquet")


def setup(tmp_path, mode: str, deployed_at: float, spool: bool = True):
    # Training data centred at 0; production has sat at 1.0 for eight days (a new normal).
    pd.DataFrame({"x": np.random.default_rng(0).normal(0, 1, 5000)}).to_parquet(tmp_path / "train.parquet")
    write_samples(tmp_path, T0 - 8 * DAY, T0 + 60, 1.0, 1)
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], samples={"path": "samples/", "timestamp_column": "timestamp"},
        reference={"path": "train.parquet"})],
        policy={"reference_after_cold_start": mode, "rolling_reference": "7d"},
        spool={"enabled": spool})
    registry = serving_registry(registered_at=deployed_at)
    return make_vigil(cfg, prometheus=StubPrometheus(), registry=registry, notifiers={})


def drift(report) -> list:
    return [f for f in report.findings if f.kind == FindingKind.FEATURE_DRIFT]


def test_training_reference_by_default_sees_the_shift(tmp_path):
    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY)
    (f,) = drift(vigil.run_cycle(MODEL, T0))
    assert f.entity == "x" and f.value > 0.2


def test_rolling_reference_after_cold_start_accepts_the_new_normal(tmp_path):
    vigil = setup(tmp_path, "rolling", deployed_at=T0 - 30 * DAY)
    report = vigil.run_cycle(MODEL, T0)
    assert drift(report) == []
    assert not any(f.kind == FindingKind.NO_DATA for f in report.findings)


def test_cold_start_always_uses_the_training_reference(tmp_path):
    vigil = setup(tmp_path, "rolling", deployed_at=T0 - 2 * DAY)
    assert drift(vigil.run_cycle(MODEL, T0))


def test_profiles_past_the_memory_budget_are_mapped_from_the_spool_not_the_store(tmp_path, monkeypatch):
    """A fleet whose profiles do not fit in memory: each later cycle maps its profile from
    the replica's spool, with the same verdict; the store keeps no 1.7 MB profile per model."""
    import monitor.cycle.reference as reference
    from detectors.drift import profile_reference
    from monitor.cycle.detect_drift import feature_specs

    monkeypatch.setattr(reference, "SPOOLED_PROFILE_CACHE_BYTES", 1)  # nothing fits in memory
    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY)
    (first,) = drift(vigil.run_cycle(MODEL, T0))
    monkeypatch.setattr(reference, "profile_reference", lambda *a: (_ for _ in ()).throw(AssertionError("rebuilt")))
    (again,) = drift(vigil.run_cycle(MODEL, T0 + 60))
    assert vigil.references._spool.hits >= 1
    assert again.entity == first.entity == "x" and again.value > 0.2
    mapped, path = vigil.references.training(vigil.config.models[0], "1")
    assert vigil.store.profile(MODEL, "1", path) is None
    fresh = profile_reference(pd.read_parquet(tmp_path / "train.parquet"), feature_specs(vigil.config.models[0]))
    np.testing.assert_array_equal(mapped.columns["x"].sorted_values, fresh.columns["x"].sorted_values)


def test_without_a_spool_the_store_keeps_the_profile_for_a_restart(tmp_path):
    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY, spool=False)
    vigil.run_cycle(MODEL, T0)
    _, path = vigil.references.training(vigil.config.models[0], "1")
    assert vigil.store.profile(MODEL, "1", path) is not None


def test_a_changed_feature_list_is_never_scored_against_a_spooled_profile(tmp_path):
    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY)
    vigil.run_cycle(MODEL, T0)
    m = vigil.config.models[0]
    retyped = m.model_copy(update={"features": [m.features[0].model_copy(update={"type": "categorical"})]})
    chooser = vigil.references
    chooser._training = type(chooser._training)(1)  # forget what memory holds
    profile, _ = chooser.training(retyped, "1")
    assert [(f.name, f.type) for f in profile.features] == [("x", "categorical")]


def test_rolling_reference_holds_only_the_serving_versions_samples(tmp_path):
    """Cold start 1 d, rolling reference 7 d, deploy 3 d ago: the previous version's samples
    (x ~ 3) must not enter the rolling reference of the version now serving (x ~ 1), or its
    own steady production reads as drift against a mix of two models."""
    pd.DataFrame({"x": np.random.default_rng(0).normal(0, 1, 5000)}).to_parquet(tmp_path / "train.parquet")
    write_samples(tmp_path, T0 - 8 * DAY, T0 - 3 * DAY, 3.0, 1)
    write_samples(tmp_path, T0 - 3 * DAY, T0 + 60, 1.0, 2)
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], samples={"path": "samples/", "timestamp_column": "timestamp"},
        reference={"path": "train.parquet"})],
        policy={"reference_after_cold_start": "rolling", "rolling_reference": "7d", "cold_start": "1d"})
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(registered_at=T0 - 3 * DAY),
                       notifiers={})
    report = vigil.run_cycle(MODEL, T0)
    assert drift(report) == []
    assert not any(f.kind == FindingKind.NO_DATA for f in report.findings)


def test_a_prediction_also_listed_as_a_feature_is_judged_once_and_its_profile_reloads(tmp_path):
    """`prediction_column: label` with `label` also among the features (categorical, a
    classifier's class): one drift finding for it, not two, and the stored profile must
    load again on the next cycle (it held the column twice under two types)."""
    rng = np.random.default_rng(4)
    pd.DataFrame({"label": rng.choice(["cat", "dog"], 3000)}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    ts = np.arange(T0 - 1200, T0 + 60, 2.0)
    pd.DataFrame({"timestamp": ts, "label": rng.choice(["cat", "dog"], len(ts), p=[0.9, 0.1])}).to_parquet(
        tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=[{"name": "label", "type": "categorical"}], prediction_column="label",
        samples={"path": "samples/", "timestamp_column": "timestamp"}, reference={"path": "train.parquet"})],
        spool={"enabled": False})
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})
    for t in (T0, T0 + 60):
        vigil.references._training = type(vigil.references._training)(1)  # a restart: the store's copy
        report = vigil.run_cycle(MODEL, t)
        assert not report.blind, report.blind
        moved = [f for f in report.findings if f.entity == "label" and f.kind in (
            FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT)]
        assert [f.kind for f in moved] == [FindingKind.PREDICTION_DRIFT]


def test_an_unreadable_stored_profile_is_built_again_not_blind_forever(tmp_path):
    """A profile in the store that no longer loads (damaged, or written by a version that
    held a column twice under two types) is profiled again from the reference, as the
    spool's copy is; drift was `no_data` on every cycle until someone deleted the row."""
    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY, spool=False)
    path = str(vigil.references.training_path(vigil.config.models[0], "1"))
    vigil.store.save_profile(MODEL, "1", path, b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"format": 1}   ' + b"x", T0)
    report = vigil.run_cycle(MODEL, T0)
    assert not report.blind, report.blind
    (f,) = drift(report)
    assert f.entity == "x" and f.value > 0.2


def test_a_damaged_spooled_profile_is_built_again(tmp_path):
    """The spool's copy cut short (a full disk, a crash mid-write on another replica's
    volume): zipfile's BadZipFile was not among the errors that rebuild it."""
    from monitor.cycle.detect_drift import feature_specs
    from monitor.sources.spool import Spool

    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY, spool=True)
    m = vigil.config.models[0]
    path = str(vigil.references.training_path(m, "1"))
    skey = Spool.key(MODEL, "1", path, [(s.name, s.type) for s in feature_specs(m)], "v1")
    vigil.references._spool.put("profiles", skey, b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"format": 1}   ' + b"x")
    report = vigil.run_cycle(MODEL, T0)
    assert not report.blind, report.blind
    (f,) = drift(report)
    assert f.entity == "x" and f.value > 0.2


def test_rolling_profiles_of_many_models_built_at_once_on_sweep_threads(monkeypatch):
    """At the turn of a day every model of a sweep builds its rolling profile at the same
    time, on the sweep's threads, through one chooser: none may fail (a dict changed
    during iteration, or its profile dropped by another model's rebuild) or get another's."""
    import sys
    import threading
    from types import SimpleNamespace

    import monitor.cycle.reference as reference
    from monitor.config import PolicyConfig
    from monitor.cycle.reference import ReferenceChooser

    policy = PolicyConfig(reference_after_cold_start="rolling", min_samples=1)
    config = SimpleNamespace(policy_for=lambda m: policy)
    store = SimpleNamespace(last_deploy=lambda name, until: None)
    samples = SimpleNamespace(window=lambda m, a, b, purpose="": pd.DataFrame({"x": [1.0, 2.0]}))
    monkeypatch.setattr(reference, "profile_reference", lambda frame, specs: SimpleNamespace(specs=specs))
    monkeypatch.setattr(reference, "feature_specs", lambda m: [SimpleNamespace(name="x", model=m.name)])
    chooser = ReferenceChooser(config, store, None, samples, now=lambda: T0)  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        for day in range(20):
            w = SimpleNamespace(start=T0 + day * DAY, t=T0 + day * DAY + 60)
            for i in range(thread, 400, 8):
                m = SimpleNamespace(name=f"m{i}")
                try:
                    profile, _ = chooser.choose(m, "1", w)  # type: ignore[arg-type]
                    assert profile.specs[0].model == m.name
                except BaseException as e:  # noqa: BLE001 - collected for the assertion below
                    errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert errors == [], errors[:3]


def test_a_feature_production_never_logged_does_not_blind_the_rolling_reference(tmp_path):
    """A feature added to the config (`y`) that production has not logged yet: the rolling
    reference cannot profile it, so the model falls back to its training reference for the
    day; `x` is still judged and `y` is reported missing, rather than every feature's drift
    being `no_data` ("reference has no column(s) ['y']") and 7 days re-read every cycle."""
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)}).to_parquet(tmp_path / "train.parquet")
    write_samples(tmp_path, T0 - 8 * DAY, T0 + 60, 1.0, 1)  # x only
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x", "y"], samples={"path": "samples/", "timestamp_column": "timestamp"},
        reference={"path": "train.parquet"})],
        policy={"reference_after_cold_start": "rolling", "rolling_reference": "7d"})
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})
    report = vigil.run_cycle(MODEL, T0)
    assert not [f for f in report.findings if f.kind == FindingKind.NO_DATA], report.blind
    assert [f.entity for f in drift(report)] == ["x"]
    assert [f.entity for f in report.findings if f.kind == FindingKind.DATA_QUALITY
            and f.statistic == "column_missing"] == ["y"]


@pytest.mark.parametrize("spool", [True, False])
def test_a_training_reference_replaced_in_place_is_profiled_again(tmp_path, spool):
    """The reference file of the serving version fixed in place (same path, same version):
    the next cycle judges against the new file, not the profile of the old one, which the
    store and the spool kept for good (a restart did not help)."""
    import os

    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY, spool=spool)
    assert drift(vigil.run_cycle(MODEL, T0))  # production (x ~ 1) against training (x ~ 0)
    train = tmp_path / "train.parquet"
    pd.DataFrame({"x": np.random.default_rng(9).normal(1, 1, 6000)}).to_parquet(train)
    os.utime(train, (T0 + 30, T0 + 30))  # written after the profile (the store's clock is the cycle's)
    vigil.references._training = type(vigil.references._training)(1 << 30)  # a restart's empty memory
    assert drift(vigil.run_cycle(MODEL, T0 + 60)) == []


def test_a_profile_stored_before_time_units_were_aligned_is_built_again(tmp_path):
    """A datetime feature in a Spark reference (datetime64[us]): a Vigil before the unit fix
    stored its profile in microseconds. After the upgrade the window reads in nanoseconds;
    judged against that stored profile, identical times were FEATURE_DRIFT (100% out of range)
    on every cycle until the reference file changed. The old profile is built again."""
    import json
    import time

    from detectors.drift import FeatureSpec, profile_reference

    rng = np.random.default_rng(3)

    def times(n: int) -> pd.Series:
        return pd.to_datetime(T0 - 60 * DAY + rng.uniform(0, DAY, n), unit="s").astype("datetime64[us]")

    pd.DataFrame({"x": times(5000)}).to_parquet(tmp_path / "train.parquet")
    ts = np.arange(T0 - 3600, T0 + 60, 10.0)
    (tmp_path / "samples").mkdir()
    pd.DataFrame({"timestamp": ts, "x": times(len(ts))}).to_parquet(tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], samples={"path": "samples/", "timestamp_column": "timestamp"},
        reference={"path": "train.parquet"})], spool={"enabled": False})
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})
    # What the earlier Vigil stored: the reference's times as microsecond numbers, format 1.
    micros = pd.read_parquet(tmp_path / "train.parquet")["x"].astype("int64").to_frame()
    blob = profile_reference(micros, [FeatureSpec("x", "numeric")]).to_bytes()
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n])
    head["format"] = 1
    head_bytes = json.dumps(head).encode()
    old = len(head_bytes).to_bytes(8, "little") + head_bytes + blob[8 + n:]
    path = str(vigil.references.training_path(vigil.config.models[0], "1"))
    vigil.store.save_profile(MODEL, "1", path, old, time.time() + 60)
    report = vigil.run_cycle(MODEL, T0)
    assert drift(report) == [], [f.message for f in drift(report)]
    assert not [f for f in report.findings if f.kind == FindingKind.DATA_QUALITY], \
        [f.message for f in report.findings if f.kind == FindingKind.DATA_QUALITY]


@pytest.mark.parametrize("spool", [True, False])
def test_a_reference_file_gone_after_profiling_keeps_its_profile(tmp_path, spool):
    """The reference's mount unavailable for a while (an NFS outage) or the file cleaned up
    after it was profiled: the profile Vigil already has still judges the window, as it did
    before profiles were keyed by the file's mtime; it is not 'reference does not exist'
    (drift blind) on every cycle."""
    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY, spool=spool)
    assert drift(vigil.run_cycle(MODEL, T0))
    (tmp_path / "train.parquet").rename(tmp_path / "away.parquet")
    report = vigil.run_cycle(MODEL, T0 + 60)
    assert [f.entity for f in drift(report)] == ["x"], report.blind


def test_a_rolling_models_drift_report_compares_with_the_rolling_reference(tmp_path, monkeypatch):
    """Production settled at x ~ 1 (the rolling reference's normal), then y moved: the alert
    names y only. The incident's Evidently page was rendered against the training file
    (x ~ 0) and showed x drifting too, contradicting the alert; it now gets the rolling rows."""
    from monitor.cycle import drift_report

    rng = np.random.default_rng(5)
    pd.DataFrame({"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    ts = np.arange(T0 - 8 * DAY, T0 + 60, 10.0)
    y = np.where(ts > T0 - 1800, rng.normal(3, 1, len(ts)), rng.normal(0, 1, len(ts)))
    production = pd.DataFrame({"timestamp": ts, "x": rng.normal(1, 1, len(ts)), "y": y})
    production.to_parquet(tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x", "y"], samples={"path": "samples/", "timestamp_column": "timestamp"},
        reference={"path": "train.parquet"})],
        policy={"reference_after_cold_start": "rolling", "rolling_reference": "7d"})
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})
    pages: list[pd.DataFrame] = []
    monkeypatch.setattr(drift_report, "render_drift_report",
                        lambda ref, cur, cols, **kw: pages.append(ref) or "<html/>")
    report = vigil.run_cycle(MODEL, T0)
    assert [f.entity for f in drift(report)] == ["y"]
    (reference,) = pages
    assert reference["x"].mean() > 0.8  # the rolling rows the verdict was judged against, not training's x ~ 0


def test_a_stored_profile_damaged_in_its_compression_is_built_again(tmp_path):
    """The store keeps profiles gzip'd: a row whose gzip is cut short or damaged raised
    EOFError/BadGzipFile from the store before the profile reader could say 'unreadable',
    so the model's drift was an internal error on every cycle, as a4240fa meant to end."""
    from monitor.store.tables import ProfileRow

    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY, spool=False)
    path = str(vigil.references.training_path(vigil.config.models[0], "1"))
    vigil.store.save_profile(MODEL, "1", path, b"profile", T0)
    with vigil.store.tx() as s:
        row = s.get(ProfileRow, (MODEL, "1", path))
        row.profile_gz = row.profile_gz[:12]  # cut short
    report = vigil.run_cycle(MODEL, T0)
    assert not report.blind, report.blind
    (f,) = drift(report)
    assert f.entity == "x" and f.value > 0.2


def test_a_replaced_references_old_profile_leaves_memory(tmp_path):
    """The profile cache never evicts (it refuses what does not fit): keyed by the file's
    mtime, each in-place fix of a reference left the old file's profile held for good, and
    once the budget was spent every model's profile was refused and read back from the store
    or spool each cycle. The old file's profile now goes when the new one comes."""
    import os

    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY, spool=False)
    vigil.run_cycle(MODEL, T0)
    held = vigil.references._training.bytes
    train = tmp_path / "train.parquet"
    pd.DataFrame({"x": np.random.default_rng(9).normal(1, 1, 5000)}).to_parquet(train)
    os.utime(train, (T0 + 30, T0 + 30))
    assert drift(vigil.run_cycle(MODEL, T0 + 60)) == []  # judged against the new file
    assert len(vigil.references._training) == 1
    assert vigil.references._training.bytes <= held * 1.1


def test_no_serving_version_is_said_so_not_tag_version_none(tmp_path):
    """Without `reference.path`, the reference is the serving version's tag; with the alias not
    set in the registry the cycle said "set reference.path or tag version None with
    vigil.reference_path": no version None exists to tag. It now names the missing alias."""
    from tests.helpers_vigil import MemoryRegistry

    write_samples(tmp_path, T0 - 600, T0 + 60, 0.0, 1)
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], samples={"path": "samples/", "timestamp_column": "timestamp"})])
    registry = MemoryRegistry()
    registry.add_version(MODEL, "1", created_at=T0 - 30 * DAY)  # registered, but no alias points at it
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=registry, notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA and f.entity == "training reference"]
    assert "version None" not in gap.message and "champion" in gap.message, gap.message


def test_a_reference_tag_holding_a_url_says_only_local_paths_are_read(tmp_path):
    """MLflow users tag datasets with their URI; a version tagged vigil.reference_path =
    s3://bucket/train.parquet was joined to the config folder and reported as
    '/etc/vigil/s3:/bucket/train.parquet does not exist': a path nobody wrote."""
    from tests.helpers_vigil import MemoryRegistry

    write_samples(tmp_path, T0 - 600, T0 + 60, 0.0, 1)
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], samples={"path": "samples/", "timestamp_column": "timestamp"})])
    registry = MemoryRegistry()
    registry.add_version(MODEL, "1", created_at=T0 - 30 * DAY, tags={"vigil.reference_path": "s3://bucket/train.parquet"})
    registry.aliases[(MODEL, "champion")] = "1"
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=registry, notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA and f.entity == "training reference"]
    assert "s3://bucket/train.parquet" in gap.message and "local" in gap.message, gap.message


def test_building_the_rolling_reference_keeps_the_drift_windows_files_parsed(tmp_path, monkeypatch):
    """The rolling reference read the samples as the drift window's own reader: its days-long
    read replaced the window's, so the window's files left the spool and memory, and the next
    cycle (and each drift report, which reads the rolling reference again) parsed them again."""
    from monitor.sources.samples import SampleFiles

    vigil = setup(tmp_path, "rolling", deployed_at=T0 - 30 * DAY)
    for f in (tmp_path / "samples").iterdir():  # one file a day, the window's apart
        f.unlink()
    for day in range(8, 0, -1):
        write_samples(tmp_path, T0 - day * DAY, T0 - (day - 1) * DAY, 1.0, day)
    write_samples(tmp_path, T0 - 1800, T0 + 60, 1.0, 99)
    assert drift(vigil.run_cycle(MODEL, T0)) == []  # builds the day's rolling profile
    parsed: list[str] = []
    real = SampleFiles._parse_any
    monkeypatch.setattr(SampleFiles, "_parse_any",
                        lambda self, path, arrow: parsed.append(path) or real(self, path, arrow))
    assert drift(vigil.run_cycle(MODEL, T0 + 60)) == []
    assert parsed == []
    # ... and the week the rolling reference read once a day is not held for it between reads
    # (without a spool, memory's budget would fill with it and refuse the windows' files).
    held = vigil.gather_sources.samples.files(vigil.config.model(MODEL))._spooled  # type: ignore[union-attr]
    window_files = [f"{int(T0 - 1800)}.parquet", f"{int(T0 - DAY)}.parquet"]
    assert sorted(p.rsplit("/", 1)[1] for p in held) == sorted(window_files)
