"""A value that is not a finite number (`histogram_quantile` past the top bucket gives +Inf)
reads as Prometheus writes it, "+Inf", "-Inf" or "NaN", next to its threshold: it read
"SLO p99_latency: infs > 0.5s (peak infs)" in the detector's words and "is n/a, above its SLO
of 500 ms" in Slack, as if nothing had been measured."""
from __future__ import annotations

import math

import numpy as np
import pytest

from alerts.policy import Policy, assign_tier
from alerts.slack_text import finding_line
from correlators.incident import Incident
from detectors.base import NoState
from detectors.records import Finding, FindingKind, Series
from detectors.slo import SloDetector, SloParams

T = 1_800_000_000.0


def slo_breach(point: float, above: bool) -> Finding:
    ts = np.arange(T - 600, T, 60.0)
    detector = SloDetector(SloParams(slo="p99_latency", threshold=0.5, above=above, step=60, unit="s"))
    found = detector.score(NoState(), Series("p99", {}, ts, np.array([0.1] * 5 + [point] * 5)), T - 600, T)
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("point, above, shown, cmp, words", [
    (math.inf, True, "+Inf", ">", "above"), (-math.inf, False, "-Inf", "<", "below")])
def test_an_infinite_slo_value_reads_as_prometheus_writes_it_next_to_its_threshold(point, above, shown, cmp, words):
    f = slo_breach(point, above)
    assert f.message.startswith(f"SLO p99_latency: {shown} {cmp} 0.5s for ") and f.message.endswith(f"(peak {shown})")
    line = finding_line(f.to_dict())
    assert f"*p99_latency* is {shown}, {words} its SLO of 500 ms" in line, line
    again = Finding.from_dict(f.to_dict())  # as a later cycle reads the stored incident's findings
    assert again.value == point and isinstance(again.value, float)


def test_a_nan_value_reads_nan_next_to_its_threshold():
    f = Finding(kind=FindingKind.DATA_QUALITY, entity="x", value=math.nan, threshold=0.05, window_start=T - 1800,
                window_end=T, onset=T - 600, model="m", statistic="psi")
    line = finding_line(f.to_dict())
    assert "NaN against a threshold of 0.05" in line, line
    assert math.isnan(Finding.from_dict(f.to_dict()).value)


def test_a_paging_slo_reason_says_plus_inf_not_inf():
    f = slo_breach(math.inf, True)
    decision = assign_tier(Incident("m", T - 600, T, T - 300, [f], []), Policy(), now=T, last_deploy_at=None,
                           slo_streaks={"p99_latency": 3})
    assert any("(+Inf vs 0.5;" in r for r in decision.reasons), decision.reasons


def test_a_canary_effect_that_is_not_finite_reads_as_prometheus_writes_it():
    from alerts.canary_text import verdict_line

    line = verdict_line({"metric": "latency", "verdict": "fail", "kind": "mean", "effect": math.inf,
                         "fail_effect": 0.1, "challenger": 0.3, "champion": 0.0})
    assert "effect +Inf (fail at +10.0%)" in line, line
