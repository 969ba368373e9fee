"""Canaries through the real cycle: a real Prometheus backfilled with promtool, the real
MLflow registry client on its SQLite store, `python -m benchmarks.canary`'s cases.

A slower challenger is pulled (its alias removed in MLflow, audited), a good one earns a
promotion suggestion, and one whose alias exists but whose series do not is inconclusive
for every cycle, never passed."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.canary import CanaryCase, run, summary
from monitor.config import MlflowConfig
from monitor.replay.local_prometheus import PrometheusNotInstalled, find_binaries
from monitor.sources.registry import RegistrySource

pytestmark = pytest.mark.integration

CASES = (
    CanaryCase("good", "good"),
    CanaryCase("slow", "bad", latency_effect=0.4),
    CanaryCase("failing", "bad", error_rate=0.08),
    CanaryCase("silent", "no_data"),
)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    workdir = tmp_path_factory.mktemp("canary")
    results = run(CASES, workdir, cycles=4, seed=3)
    return {r.case.name: r for r in results}, workdir


def test_bad_canaries_are_pulled_in_the_real_registry(outcome):
    results, workdir = outcome
    registry = RegistrySource(MlflowConfig(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}"))
    for name, metric in (("slow", "latency"), ("failing", "error_rate")):
        r = results[name]
        assert (r.verdict, r.cycles) == ("pulled", 1), r.detail
        assert metric in r.detail
        assert registry.alias_version(name, "challenger") is None
        assert registry.alias_version(name, "champion") == "1"


def test_a_good_canary_is_suggested_for_promotion_and_keeps_its_alias(outcome):
    results, workdir = outcome
    r = results["good"]
    assert r.verdict == "promotion_suggested" and r.cycles == 3
    registry = RegistrySource(MlflowConfig(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}"))
    assert registry.alias_version("good", "challenger") == "2"


def test_no_data_is_inconclusive_and_the_summary_line_counts_it(outcome):
    results, _ = outcome
    assert results["silent"].verdict == "inconclusive" and results["silent"].cycles is None
    assert summary(list(results.values())) == (
        "good_rolled_back=0 bad_missed=0 inconclusive_no_data=1 median_cycles_to_verdict=1")
