"""With `canary.version_column`, the window's samples hold both versions' rows. The
champion's own drift was judged on all of them: a challenger whose predictions are off
made the champion look drifted (a prediction-drift finding on the champion, and with a
KPI drop a critical incident whose automatic rollback moves the champion, the wrong
thing). The champion is now judged on its own rows; the challenger's are the canary's."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.records import FindingKind
from monitor.cycle.samples import own_rows
from monitor.types import Window
from tests.helpers_vigil import (
    MODEL,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
    write_reference,
)


def _vigil(tmp_path, **model):
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["user_age"], prediction_column="score", reference={"path": "train.parquet"},
        samples={"path": "samples/", "timestamp_column": "timestamp"}, **model,
        canary={"alias": "challenger", "version_column": "model_version", "distribution_threshold": 0.2})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    return make_vigil(cfg, prometheus=StubPrometheus(), registry=registry, notifiers={}), registry


def _samples(tmp_path, rng, champion: int, challenger: int) -> None:
    """Champion rows like the training data; the challenger's scores are all above 1."""
    def rows(version: str, n: int, low: float, high: float) -> pd.DataFrame:
        return pd.DataFrame({"timestamp": T0 - 900 + rng.uniform(0, 880, n), "user_age": rng.normal(40, 10, n),
                             "score": rng.uniform(low, high, n), "model_version": version})
    pd.concat([rows("1", champion, 0, 1), rows("2", challenger, 1.5, 2.5)], ignore_index=True).to_parquet(
        tmp_path / "samples" / "a.parquet")


def test_a_bad_challenger_does_not_make_the_champion_look_drifted(tmp_path):
    rng = np.random.default_rng(3)
    write_reference(tmp_path, rng)
    _samples(tmp_path, rng, champion=1500, challenger=500)
    vigil, registry = _vigil(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    drift = [f for f in report.findings if f.kind in (FindingKind.PREDICTION_DRIFT, FindingKind.FEATURE_DRIFT)]
    assert drift == [], [f.message for f in drift]  # the champion's own rows are as trained
    assert report.canary is not None and report.canary.overall == "fail"  # the challenger's are not
    assert {f.entity for f in report.findings if f.kind == FindingKind.CANARY_FAIL} == {"score"}
    assert registry.aliases[(MODEL, "champion")] == "1"


def test_the_champion_is_judged_on_its_own_rows_only(tmp_path):
    """Its drift counts and statistics are of its rows: 1,500, not 2,000."""
    rng = np.random.default_rng(4)
    write_reference(tmp_path, rng)
    _samples(tmp_path, rng, champion=1500, challenger=500)
    vigil, _ = _vigil(tmp_path)
    judged = []
    real = vigil.canary.judge

    def spy(m, w, policy, samples):
        judged.append(len(samples))
        return real(m, w, policy, samples)

    vigil.canary.judge = spy  # type: ignore[method-assign]
    report = vigil.run_cycle(MODEL, T0)
    assert judged == [2000]  # the canary still sees both versions
    assert not [f for f in report.findings if f.kind == FindingKind.PREDICTION_DRIFT]


def test_the_rolling_reference_holds_the_champions_rows_not_a_challengers(tmp_path):
    """A week of production at x ~ 1 from the champion, while a challenger (x ~ 5, pulled a
    day ago) took a share: the rolling reference, profiled from both, made the champion's
    unchanged x look drifted. It is profiled from the champion's rows."""
    day = 86400.0
    rng = np.random.default_rng(6)
    pd.DataFrame({"x": rng.normal(0, 1, 5000)}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    ts = np.arange(T0 - 8 * day, T0 + 60, 5.0)
    theirs = np.arange(T0 - 8 * day, T0 - day, 10.0)
    pd.concat([pd.DataFrame({"timestamp": ts, "x": rng.normal(1, 1, len(ts)), "model_version": "1"}),
               pd.DataFrame({"timestamp": theirs, "x": rng.normal(5, 1, len(theirs)), "model_version": "2"})],
              ignore_index=True).to_parquet(tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], samples={"path": "samples/", "timestamp_column": "timestamp"},
        reference={"path": "train.parquet"}, canary={"alias": "challenger", "version_column": "model_version"})],
        policy={"reference_after_cold_start": "rolling", "rolling_reference": "7d"})
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    assert [f.message for f in report.findings if f.kind == FindingKind.FEATURE_DRIFT] == []
    assert not report.blind, report.blind


def test_samples_written_as_the_performance_template_are_split_by_it(tmp_path):
    """Only `performance.version_value: "resnet50-v{version}"` says how the samples' column
    writes a version (the metrics' label value is the registry's "2"): rows "resnet50-v1" and
    "resnet50-v2" were neither version's, so the canary's distributions had no rows (the
    canary inconclusive every cycle, a good challenger never promoted, a bad one's
    predictions never failed) and the champion's own drift read none of its rows."""
    rng = np.random.default_rng(8)
    performance = {"task": "classification", "prediction_column": "score", "version_value": "resnet50-v{version}",
                   "reference": {"start": T0 - 3 * 86400, "end": T0 - 2 * 86400}}
    vigil, _ = _vigil(tmp_path, performance=performance)
    cfg = vigil.config

    def rows(version: str, n: int, low: float, high: float) -> pd.DataFrame:
        return pd.DataFrame({"user_age": rng.normal(40, 10, n), "score": rng.uniform(low, high, n),
                             "model_version": version, "_ts": np.linspace(T0 - 900, T0, n)})

    samples = pd.concat([rows("resnet50-v1", 1500, 0, 1), rows("resnet50-v2", 500, 1.5, 2.5)], ignore_index=True)
    m = cfg.model(MODEL)
    judged = vigil.canary.judge(m, Window(t=T0, start=T0 - 3600, baseline_start=T0 - 7200, baseline_end=T0 - 3600),
                                cfg.policy_for(m), samples)
    assert judged is not None
    score = {v.metric: v for v in judged.verdict.metrics if v.kind == "distribution"}["score"]
    assert (score.n_champion, score.n_challenger) == (1500, 500)
    assert score.verdict == "fail", score.reason
    assert len(own_rows(m, samples, "1")) == 1500  # the champion's own drift reads its rows
