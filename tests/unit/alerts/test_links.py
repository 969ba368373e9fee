"""The links a message carries: Grafana around the onset, the drift report at the public
URL, the model version in MLflow, the runbook for what was found."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from alerts.links import IncidentRef, LinkSettings, incident_links, link_list
from alerts.slack_blocks import render_incident

ONSET = 1795165200.0


def settings(**over) -> LinkSettings:
    base = {"grafana_base": "https://grafana.example.com/", "api_base": "https://vigil.example.com",
            "mlflow_ui": "https://mlflow.example.com",
            "runbooks": {"default": "https://wiki/vigil", "slo_breach": "https://wiki/latency"},
            "model_runbooks": {"ranker": {"feature_drift": "https://wiki/ranker-drift"}}}
    base.update(over)
    return LinkSettings(**base)


def ref(**over) -> IncidentRef:
    base = {"model": "recommender", "incident_id": 7, "dashboard_uid": "vigil-recommender", "onset": ONSET,
            "last_seen": ONSET + 600, "kinds": ["kpi_drop", "feature_drift"], "registry_name": "recsys",
            "version": "3"}
    base.update(over)
    return IncidentRef(**base)


def test_grafana_link_opens_the_dashboard_around_the_onset():
    url = incident_links(settings(), ref())["grafana"]
    assert url is not None and url.startswith("https://grafana.example.com/d/vigil-recommender?")
    q = parse_qs(urlsplit(url).query)
    assert int(q["from"][0]) == int((ONSET - 3600) * 1000) and int(q["to"][0]) == int((ONSET + 600 + 3600) * 1000)
    assert incident_links(settings(grafana_base=None), ref())["grafana"] is None
    assert "viewPanel" not in q  # no panel for the top finding: the whole dashboard


def test_grafana_link_opens_the_top_findings_panel_with_the_same_range():
    url = incident_links(settings(), ref(panel_id=12))["grafana"]
    assert url is not None and urlsplit(url).path == "/d/vigil-recommender"
    q = parse_qs(urlsplit(url).query)
    assert q["viewPanel"] == ["12"] and int(q["from"][0]) == int((ONSET - 3600) * 1000)


def test_drift_report_at_the_public_url_only_for_drift():
    links = incident_links(settings(), ref())
    assert links["drift_report"] == "https://vigil.example.com/v1/incidents/7/drift-report"
    assert incident_links(settings(), ref(kinds=["slo_breach"]))["drift_report"] is None


def test_mlflow_link_opens_the_registered_model_version():
    assert incident_links(settings(), ref())["mlflow"] == "https://mlflow.example.com/#/models/recsys/versions/3"
    assert incident_links(settings(mlflow_ui=None), ref())["mlflow"] is None
    assert incident_links(settings(), ref(version=None))["mlflow"] is None


def test_runbook_per_model_then_per_finding_kind_then_default():
    s = settings()
    assert incident_links(s, ref(model="ranker", kinds=["feature_drift"]))["runbook"] == "https://wiki/ranker-drift"
    assert incident_links(s, ref(kinds=["slo_breach", "gpu_saturation"]))["runbook"] == "https://wiki/latency"
    assert incident_links(s, ref(kinds=["kpi_drop"]))["runbook"] == "https://wiki/vigil"
    assert incident_links(settings(runbooks={}), ref())["runbook"] is None


def test_every_set_link_appears_in_the_message():
    links = incident_links(settings(), ref())
    labels = [label for label, _ in link_list(links)]
    assert labels == [":bar_chart: Grafana", ":page_facing_up: Drift report", ":package: Model version in MLflow",
                      ":book: Runbook"]
    payload = {"incident_id": 7, "model": "recommender", "severity": "warning", "status": "open", "title": "t",
               "findings": [], "causes": [], "actions": [], "links": links}
    context = [e["text"] for b in render_incident(payload)[1] if b["type"] == "context" for e in b["elements"]]
    assert f"<{links['runbook']}|:book: Runbook>" in context
    assert f"<{links['mlflow']}|:package: Model version in MLflow>" in context


def test_a_link_whose_url_holds_slack_control_characters_still_opens_it():
    """A runbook URL with `|` (a wiki anchor) or `>` was cut where Slack reads the label's
    start or the link's end: the link opened the wrong page and the rest showed as text.
    The URL is escaped as Slack asks (&, <, >) and `|` percent-encoded."""
    url = "https://wiki.example.com/display/ML?title=a|b&x=<1>"
    payload = {"incident_id": 7, "model": "recommender", "severity": "warning", "status": "open", "title": "t",
               "findings": [], "causes": [], "actions": [], "links": {"runbook": url}}
    context = [e["text"] for b in render_incident(payload)[1] if b["type"] == "context" for e in b["elements"]]
    assert "<https://wiki.example.com/display/ML?title=a%7Cb&amp;x=&lt;1&gt;|:book: Runbook>" in context, context
