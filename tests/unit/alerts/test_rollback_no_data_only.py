"""No automatic rollback on "no data" alone. The incident is critical for something that is
not the champion's (the challenger v3's own accuracy dropped on labelled rows), and the only
evidence against the champion's deploy v2 is a KPI that reads nothing: a series that stopped
after it (the version may no longer export it, or its scrape target went away), or a query
that matches nothing (a misspelt metric name). The guard rolled v2 back at confidence 0.60."""
from __future__ import annotations

import pytest

from alerts.policy import Policy, RollbackGuard, assign_tier, check_rollback
from correlators.causes import build_incident
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0


def _ctr(stopped: bool) -> Finding:
    ev = {"reason": "the series stopped", "stopped_s": 200.0} if stopped else {"reason": "the query returned no series"}
    return Finding(FindingKind.NO_DATA, "ctr", 0.0, 1.0, T - 1800, T, T, score=0.3, model="recommender",
                   statistic="points", message="no data for ctr", evidence={"query": "ctr_total", **ev})


def _challenger_drop() -> Finding:
    return Finding(FindingKind.PERFORMANCE_DROP, "accuracy", -20.0, -5.0, T - 1800, T, T - 300, score=0.9,
                   model="recommender", statistic="accuracy_change_pct", message="accuracy of v3 fell 20 %",
                   evidence={"basis": "realised", "version": "3"})


@pytest.mark.parametrize(("stopped", "code"), [(True, "no_data_only"), (False, "no_deploy")],
                         ids=["stopped-after-the-deploy", "query-matches-nothing"])
def test_no_automatic_rollback_when_the_deploys_only_evidence_is_no_data(stopped: bool, code: str) -> None:
    deploy = DeployEvent("recommender", "champion", "2", "1", T - 300)
    incident = build_incident("recommender", [_challenger_drop(), _ctr(stopped)], [deploy],
                              window_start=T - 1800, window_end=T)
    assert incident is not None
    tier = assign_tier(incident, Policy(), now=T, last_deploy_at=None, slo_streaks={})
    assert tier.severity == "critical", tier.reasons
    verdict = check_rollback(incident, tier.severity, RollbackGuard(), now=T, recent_rollbacks=[])
    assert not verdict.allowed and verdict.code == code, verdict
    if stopped:
        assert "no data" in verdict.reason and "people may roll back" in verdict.reason, verdict.reason
