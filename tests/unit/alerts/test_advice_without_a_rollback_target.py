"""A wrong metric name's "no data" incident blamed "deploy v1", the first version Vigil saw
under the alias, and told on-call to "roll 'champion' back to the previous version": there
was none it knew. The advice now says what can be done: check the query, or roll back with
to_version naming a version the registry holds."""
from __future__ import annotations

from alerts.payload import suggested_action
from correlators.causes import build_incident
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0


def _no_data(entity: str = "ctr") -> Finding:
    return Finding(FindingKind.NO_DATA, entity, float("nan"), float("nan"), T - 1800, T, T - 1800, score=1.0,
                   model="recommender", message=f"no data for {entity}: the query matched no series")


def _kpi_drop() -> Finding:
    return Finding(FindingKind.KPI_DROP, "ctr", 0.04, 0.05, T - 1800, T, T - 1800, score=0.8, model="recommender")


def _advice(findings: list[Finding], previous: str | None) -> tuple[str, str]:
    d = DeployEvent("recommender", "champion", "2" if previous else "1", previous, T - 3600,
                    source="registry" if previous else "observed")
    incident = build_incident("recommender", findings, [d], window_start=T - 1800, window_end=T)
    assert incident is not None
    top = incident.causes[0]
    assert top.entity == f"recommender v{d.version}"
    cause = {"kind": "deploy", "entity": top.entity, "evidence": top.evidence, "explanation": top.explanation}
    return top.explanation, suggested_action([cause], [], "open", "recommender")


def test_a_no_data_incident_on_the_first_version_seen_never_says_roll_back_to_nothing() -> None:
    explanation, action = _advice([_no_data()], None)
    for text in (explanation, action):
        assert "previous version" not in text and "the version before it" not in text, text
        assert "check the quer" in text.lower() and "matches no series" in text, text
        assert "to_version" in text and "fix forward" in text, text
    assert "POST /v1/models/recommender/rollback" in action


def test_a_kpi_drop_without_a_known_previous_version_says_how_to_roll_back() -> None:
    explanation, action = _advice([_kpi_drop()], None)
    for text in (explanation, action):
        assert "previous version" not in text and "to_version" in text, text
        assert "check the quer" not in text.lower(), "a KPI that reads is no query problem"


def test_no_data_with_a_known_previous_version_still_offers_it_after_the_query() -> None:
    explanation, action = _advice([_no_data()], "1")
    assert "back to v1" in explanation and "check the quer" in explanation.lower(), explanation
    assert "Roll back to v1" in action or "roll back to v1" in action, action
    assert action.lower().index("check the quer") < action.lower().index("roll back to v1"), action


def test_a_kpi_drop_with_a_known_previous_version_reads_as_before() -> None:
    explanation, action = _advice([_kpi_drop()], "1")
    assert "roll 'champion' back to v1 and compare the versions' offline metrics" in explanation
    assert action == ("Roll back to v1 (button below, or POST /v1/models/recommender/rollback) "
                      "if the deploy is the cause.")
