"""The canary judge: Mann-Whitney U per metric, effect size, minimum points, absolute rules."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from detectors.canary import (
    CanaryVerdict,
    MetricRule,
    MetricVerdict,
    Verdict,
    distribution_verdict,
    judge_metric,
    min_points_for,
)

rng = np.random.default_rng(11)
CHAMPION = 0.2 * rng.lognormal(0, 0.05, 60)  # latency, seconds


def test_a_slower_challenger_fails_with_the_numbers_next_to_the_thresholds():
    v = judge_metric(MetricRule("latency", fail_effect=0.1), CHAMPION, 0.26 * rng.lognormal(0, 0.05, 60))
    assert v.verdict == Verdict.FAIL
    assert v.effect == pytest.approx(0.3, abs=0.03)
    assert v.p_value is not None and v.p_value < 1e-6
    assert v.champion == pytest.approx(np.median(CHAMPION))
    assert f"worse by {100 * (v.effect or 0):.1f}%" in v.reason
    assert ">= 10.0%" in v.reason and "< 0.05" in v.reason
    assert (v.n_champion, v.n_challenger, v.fail_effect) == (60, 60, 0.1)


def test_the_same_distribution_passes():
    v = judge_metric(MetricRule("latency"), CHAMPION, 0.2 * rng.lognormal(0, 0.05, 60))
    assert v.verdict == Verdict.PASS
    assert "no significant worsening" in v.reason or "<" in v.reason


def test_a_real_but_small_worsening_is_marginal():
    v = judge_metric(MetricRule("latency", fail_effect=0.1, marginal_effect=0.03), CHAMPION,
                     0.2 * 1.06 * rng.lognormal(0, 0.02, 200))
    assert v.verdict == Verdict.MARGINAL
    assert 0.03 <= (v.effect or 0) < 0.1


def test_better_in_the_harmful_direction_is_not_a_failure_and_direction_down_is_honoured():
    faster = 0.1 * rng.lognormal(0, 0.05, 60)
    assert judge_metric(MetricRule("latency", worse="up"), CHAMPION, faster).verdict == Verdict.PASS
    ctr = judge_metric(MetricRule("ctr", worse="down"), CHAMPION, faster)  # lower CTR is worse
    assert ctr.verdict == Verdict.FAIL and (ctr.effect or 0) > 0.4


def test_too_few_points_is_inconclusive_never_a_pass():
    v = judge_metric(MetricRule("latency", min_points=10), CHAMPION, CHAMPION[:4])
    assert v.verdict == Verdict.INCONCLUSIVE and "4 points < 10 needed" in v.reason
    empty = judge_metric(MetricRule("latency"), CHAMPION, np.array([np.nan, np.nan]))
    assert empty.verdict == Verdict.INCONCLUSIVE and empty.n_challenger == 0
    assert CanaryVerdict([]).overall == Verdict.INCONCLUSIVE


def test_min_points_is_what_the_u_test_needs_to_reach_alpha():
    for alpha in (0.05, 0.01, 0.001):
        n = min_points_for(alpha)
        separated = mannwhitneyu(np.arange(n) + 100.0, np.arange(n, dtype=float), alternative="greater").pvalue
        fewer = mannwhitneyu(np.arange(n - 1) + 100.0, np.arange(n - 1, dtype=float), alternative="greater").pvalue
        assert separated < alpha <= fewer
    # A configured min_points below what the test needs is raised to it.
    v = judge_metric(MetricRule("x", alpha=0.001, min_points=2), CHAMPION[:5], CHAMPION[:5] * 3)
    assert v.min_points == min_points_for(0.001) and v.verdict == Verdict.INCONCLUSIVE


def test_the_absolute_rule_fails_a_challenger_however_the_champion_does():
    bad_both = np.full(30, 0.07) + rng.normal(0, 0.001, 30)
    rule = MetricRule("error_rate", fail_above=0.05)
    v = judge_metric(rule, bad_both, bad_both[::-1])
    assert v.verdict == Verdict.FAIL and "> 0.05 (absolute rule)" in v.reason


def test_a_zero_champion_level_makes_any_worsening_infinite():
    v = judge_metric(MetricRule("error_rate"), np.zeros(30), np.full(30, 0.02))
    assert v.verdict == Verdict.FAIL and math.isinf(v.effect or 0)


def test_overall_is_the_worst_metric_and_records_round_trip():
    fail = judge_metric(MetricRule("a"), CHAMPION, CHAMPION * 2)
    ok = judge_metric(MetricRule("b"), CHAMPION, CHAMPION)
    short = judge_metric(MetricRule("c"), CHAMPION, CHAMPION[:3])
    assert CanaryVerdict([ok, short]).overall == Verdict.INCONCLUSIVE
    assert CanaryVerdict([ok, short, fail]).overall == Verdict.FAIL
    assert MetricVerdict.from_dict(fail.to_dict()) == fail


def test_distribution_verdicts_use_the_drift_effect_and_need_samples():
    assert distribution_verdict("score", "psi", 0.35, 0.2, 0.1, 500, 500, 100).verdict == Verdict.FAIL
    assert distribution_verdict("score", "psi", 0.15, 0.2, 0.1, 500, 500, 100).verdict == Verdict.MARGINAL
    assert distribution_verdict("score", "psi", 0.01, 0.2, 0.1, 500, 500, 100).verdict == Verdict.PASS
    few = distribution_verdict("score", "psi", 0.5, 0.2, 0.1, 500, 20, 100)
    assert few.verdict == Verdict.INCONCLUSIVE and "20 samples < 100" in few.reason


def test_a_distribution_effect_that_could_not_be_computed_is_no_pass():
    # NaN compares False with both limits: it read as a pass, and passes promote a challenger.
    v = distribution_verdict("score", "psi", math.nan, 0.2, 0.1, 500, 500, 100)
    assert v.verdict == Verdict.INCONCLUSIVE and "could not be computed" in v.reason
    assert distribution_verdict("score", "psi", math.inf, 0.2, 0.1, 500, 500, 100).verdict == Verdict.FAIL


def test_bad_rules_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="worse"):
        MetricRule("x", worse="both")
    with pytest.raises(ValueError, match="marginal_effect"):
        MetricRule("x", fail_effect=0.1, marginal_effect=0.2)
