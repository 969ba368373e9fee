"""A wrong metric name's "no data" incident blamed "deploy v1", the first version Vigil saw
under the alias, and told on-call to "roll 'champion' back to the previous version": there
was none it knew. A deploy with no version before it that Vigil knows now says what can be
done: roll back with to_version naming a version the registry holds. (A query that matches
nothing blames no deploy at all: tests/unit/correlators/test_no_data_blame.py.)"""
from __future__ import annotations

from alerts.payload import suggested_action
from correlators.causes import build_incident
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0


def _no_data(entity: str = "ctr") -> Finding:
    """A series that stopped 10 minutes after the deploy (T - 3600), as monitor/cycle/gather.py says so."""
    return Finding(FindingKind.NO_DATA, entity, float("nan"), float("nan"), T - 1800, T, T - 1800, score=1.0,
                   model="recommender", message=f"no data for {entity}: no points in the last 50 min",
                   evidence={"stopped_s": 3000.0})


def _no_series(entity: str = "ctr") -> Finding:
    return Finding(FindingKind.NO_DATA, entity, float("nan"), float("nan"), T - 1800, T, T - 1800, score=1.0,
                   model="recommender", message=f"no data for {entity}: the query matched no series")


def _kpi_drop() -> Finding:
    return Finding(FindingKind.KPI_DROP, "ctr", 0.04, 0.05, T - 1800, T, T - 1800, score=0.8, model="recommender")


def _advice(findings: list[Finding], previous: str | None, blamed: bool = True) -> tuple[str, str]:
    d = DeployEvent("recommender", "champion", "2" if previous else "1", previous, T - 3600,
                    source="registry" if previous else "observed")
    incident = build_incident("recommender", findings, [d], window_start=T - 1800, window_end=T)
    assert incident is not None
    top = incident.causes[0]
    assert (top.entity == f"recommender v{d.version}") == blamed, incident.causes
    cause = {"kind": str(top.kind), "entity": top.entity, "evidence": top.evidence, "explanation": top.explanation}
    return top.explanation, suggested_action([cause], [], "open", "recommender")


def test_a_no_data_incident_on_the_first_version_seen_never_says_roll_back_to_nothing() -> None:
    explanation, action = _advice([_no_data()], None)
    for text in (explanation, action):
        assert "previous version" not in text and "the version before it" not in text, text
        assert "still exports them" in text and "stopped after it" in text, text
        assert "to_version" in text and "fix forward" in text, text
    assert "POST /v1/models/recommender/rollback" in action


def test_a_query_matching_nothing_on_the_first_version_seen_says_check_the_query_and_no_rollback() -> None:
    explanation, action = _advice([_no_series()], None, blamed=False)
    for text in (explanation, action):
        assert "metric name and labels" in text and "roll back" not in text.lower(), text


def test_a_kpi_drop_without_a_known_previous_version_says_how_to_roll_back() -> None:
    explanation, action = _advice([_kpi_drop()], None)
    for text in (explanation, action):
        assert "previous version" not in text and "to_version" in text, text
        assert "still exports them" not in text, "a KPI that reads is no stopped series"


def test_no_data_with_a_known_previous_version_still_offers_it_after_the_query() -> None:
    explanation, action = _advice([_no_data()], "1")
    assert "back to v1" in explanation and "still exports them" in explanation, explanation
    assert "Roll back to v1" in action or "roll back to v1" in action, action
    assert action.index("still exports them") < action.lower().index("roll back to v1"), action


def test_a_kpi_drop_with_a_known_previous_version_reads_as_before() -> None:
    explanation, action = _advice([_kpi_drop()], "1")
    assert "roll 'champion' back to v1 and compare the versions' offline metrics" in explanation
    assert action == ("Roll back to v1 (button below, or POST /v1/models/recommender/rollback) "
                      "if the deploy is the cause.")
