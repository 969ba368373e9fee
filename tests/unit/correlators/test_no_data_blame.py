"""A deploy is blamed for "no data" only when the data was there at the deploy and stopped
after it (the new version no longer exports a metric). A query that matches nothing (a
misspelt metric name) reads no data from the first cycle: the deploy that happens to be the
latest, or the alias's first sight, was ranked top cause, with a rollback offered for it."""
from __future__ import annotations

from alerts.payload import suggested_action
from correlators.causes import CorrelationSettings, build_incident
from correlators.incident import CauseKind, Incident
from correlators.story import merge_findings
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0
QUERY = 'sum(rate(clickz_total{model="recommender"}[5m]))'


def no_series(entity: str = "ctr", at: float = T) -> Finding:
    """What the KPI gather makes of a query that matches nothing (monitor.types.no_data)."""
    return Finding(FindingKind.NO_DATA, entity, 0.0, 1.0, at - 1800, at, at, score=0.3, model="recommender",
                   statistic="points", message=f"no data for {entity}: the query returned no series",
                   evidence={"reason": "the query returned no series", "query": QUERY})


def stopped(last_point: float, entity: str = "ctr", at: float = T) -> Finding:
    """A series with points until `last_point`, none since (monitor/cycle/gather.py `stopped_s`)."""
    return Finding(FindingKind.NO_DATA, entity, 0.0, 1.0, at - 1800, at, at, score=0.3, model="recommender",
                   statistic="points", message=f"no data for {entity}: no points in the last "
                   f"{(at - last_point) / 60:.0f} min: the series stopped",
                   evidence={"reason": "the series stopped", "query": QUERY, "stopped_s": at - last_point})


def deploy(at: float, previous: str | None = "1", source: str = "registry") -> DeployEvent:
    return DeployEvent("recommender", "champion", "2", previous, at, source)


def build(findings: list[Finding], deploys: list[DeployEvent]) -> Incident:
    incident = build_incident("recommender", findings, deploys, window_start=T - 1800, window_end=T,
                              settings=CorrelationSettings())
    assert incident is not None
    return incident


def action(incident: Incident) -> str:
    return suggested_action([c.to_dict() for c in incident.causes], [], "open", "recommender")


def test_a_wrong_metric_name_after_a_deploy_blames_the_query_not_the_deploy() -> None:
    incident = build([no_series()], [deploy(T - 600)])
    top = incident.top_cause
    assert top is not None and top.kind == CauseKind.NO_DATA, incident.causes
    assert top.entity == "ctr"
    assert "metric name" in top.explanation and "labels" in top.explanation, top.explanation
    assert "v2" in top.explanation and "not blamed" in top.explanation, "say why the deploy is not the cause"
    assert not [c for c in incident.causes if c.kind == CauseKind.DEPLOY], incident.causes
    said = action(incident)
    assert "metric" in said and "roll back" not in said.lower(), said


def test_the_alias_first_sight_is_not_blamed_for_a_query_that_matches_nothing() -> None:
    incident = build([no_series()], [deploy(T, previous=None, source="observed")])
    assert incident.top_cause is not None and incident.top_cause.kind == CauseKind.NO_DATA
    assert not [c for c in incident.causes if c.kind == CauseKind.DEPLOY]


def test_a_series_that_stopped_after_the_deploy_is_the_deploys() -> None:
    """Data until 5 minutes after v2 took the alias, none since: v2 may no longer export it."""
    incident = build([stopped(last_point=T - 900)], [deploy(T - 1200)])
    top = incident.top_cause
    assert top is not None and top.kind == CauseKind.DEPLOY and top.entity == "recommender v2", incident.causes
    assert top.evidence.get("only_no_data") is True
    assert "ctr" in top.explanation and "stopped" in top.explanation, top.explanation
    assert not [c for c in incident.causes if c.kind == CauseKind.NO_DATA], "every gap is explained by the deploy"


def test_a_series_that_stopped_before_the_deploy_is_not_the_deploys() -> None:
    incident = build([stopped(last_point=T - 1500)], [deploy(T - 1000)])
    assert incident.top_cause is not None and incident.top_cause.kind == CauseKind.NO_DATA, incident.causes
    assert not [c for c in incident.causes if c.kind == CauseKind.DEPLOY]


def test_a_stop_after_the_deploy_stays_the_deploys_once_the_series_left_the_window() -> None:
    """An hour on, the query's range no longer reaches the last point: "no series", with the
    story (merged findings) still knowing the series stopped after the deploy."""
    first = stopped(last_point=T - 900)
    later = no_series(at=T + 3600)
    merged = merge_findings([first], [later], moves=[T - 1200])
    incident = build_incident("recommender", merged, [deploy(T - 1200)], window_start=T - 1800, window_end=T + 3600)
    assert incident is not None and incident.top_cause is not None
    assert incident.top_cause.kind == CauseKind.DEPLOY, incident.causes


def test_a_kpi_drop_with_a_wrong_metric_beside_it_still_blames_the_deploy() -> None:
    drop = Finding(FindingKind.KPI_DROP, "revenue", -12.0, -5.0, T - 1800, T, T - 300, score=0.8,
                   model="recommender", statistic="kpi_change_pct")
    incident = build([drop, no_series()], [deploy(T - 600)])
    assert incident.top_cause is not None and incident.top_cause.kind == CauseKind.DEPLOY
    assert "only_no_data" not in incident.top_cause.evidence
