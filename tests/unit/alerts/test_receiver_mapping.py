"""What each receiver is sent for one incident state: the pure mappings, checked against
the documented field rules (the fakes' own validators, which follow the contracts)."""
from __future__ import annotations

from typing import Any

from alerts.payload import IncidentSnapshot
from alerts.receivers.mapping import (
    HELD,
    alertmanager_alert,
    calls,
    iso,
    opsgenie_action,
    opsgenie_create,
    pagerduty_event,
    sent_ref,
    steps,
)
from alerts.receivers.record import receiver_record
from tests.fakes.opsgenie_server import validate_create
from tests.fakes.pagerduty_server import validate

KEY = "0123456789abcdef0123456789abcdef"  # a 32-character integration key
T = 1_800_000_000.0


def snap(**over: Any) -> IncidentSnapshot:
    base: dict[str, Any] = dict(
        incident_id=42, model="recommender", severity="critical", status="open",
        title="CTR fell 10 % and p99 latency over its SLO", opened_at=T, resolved_at=None, acknowledged_by=None,
        findings=[{"kind": "kpi_drop", "entity": "ctr", "value": 0.045, "threshold": 0.0475, "score": 0.6,
                   "statistic": "kpi_change_pct", "evidence": {"raw": [1, 2, 3]}},
                  {"kind": "slo_breach", "entity": "p99_latency", "value": 0.8, "threshold": 0.5, "score": 0.9}],
        causes=[{"kind": "deploy", "entity": "recommender v2", "score": 0.8,
                 "explanation": "v2 took the alias 10 minutes before the onset", "evidence": {}}],
        cold_start=False)
    base.update(over)
    return IncidentSnapshot(**base)


LINKS = {"grafana": "https://grafana.example/d/abc?from=1&to=2", "drift_report": None}


def record(**over: Any) -> dict[str, Any]:
    return receiver_record(snap(**over), prefix="vigil", updated_at=T + 60, links=LINKS)


def test_record_names_the_incident_with_a_key_that_depends_only_on_its_id():
    a, b = record(), record(severity="warning", title="other words")
    assert a["dedup_key"] == b["dedup_key"] == "vigil-incident-42"
    assert receiver_record(snap(), prefix="staging", updated_at=T, links={})["dedup_key"] == "staging-incident-42"
    assert [f["entity"] for f in a["findings"]] == ["p99_latency", "ctr"], "strongest finding first"
    assert "evidence" not in a["findings"][1], "raw evidence stays in Vigil, not in the page"
    assert a["links"] == {"grafana": LINKS["grafana"]}, "no empty links"


def test_pagerduty_trigger_is_a_valid_event_with_severity_links_and_details():
    event = pagerduty_event(record(), "trigger", KEY, source="")
    assert validate(event) == []
    assert event["dedup_key"] == "vigil-incident-42"
    p = event["payload"]
    assert (p["severity"], p["source"], p["component"], p["class"]) == ("critical", "vigil/recommender",
                                                                        "recommender", "deploy")
    assert p["summary"].startswith("[critical] recommender: CTR fell")
    assert p["timestamp"] == iso(T)
    assert p["custom_details"]["top_cause"] == "v2 took the alias 10 minutes before the onset"
    assert "p99_latency" in p["custom_details"]["findings"][0] and "0.5" in p["custom_details"]["findings"][0]
    assert event["links"] == [{"href": LINKS["grafana"], "text": "grafana"}]
    warn = pagerduty_event(record(severity="warning"), "trigger", KEY, source="ml-prod")
    assert (warn["payload"]["severity"], warn["payload"]["source"]) == ("warning", "ml-prod")


def test_pagerduty_acknowledge_and_resolve_carry_only_the_key():
    for action in ("acknowledge", "resolve"):
        event = pagerduty_event(record(), action, KEY, source="")
        assert event == {"routing_key": KEY, "event_action": action, "dedup_key": "vigil-incident-42"}
        assert validate(event) == []


def test_pagerduty_summary_is_cut_to_the_documented_1024_characters():
    event = pagerduty_event(record(title="x" * 5000), "trigger", KEY, source="")
    assert len(event["payload"]["summary"]) == 1024 and validate(event) == []


def test_calls_per_state_change_given_what_was_sent_before():
    kw = dict(open_="trigger", ack="acknowledge", close="resolve")
    sent = {"state": "triggered", "acknowledged": False}
    assert steps(record(), None, **kw) == ["trigger"]
    assert steps(record(), sent, **kw) == ["trigger"], "an update re-triggers: same dedup key, one alert"
    assert steps(record(acknowledged_by="alice"), sent, **kw) == ["acknowledge"]
    assert steps(record(acknowledged_by="alice"), None, **kw) == ["trigger", "acknowledge"], \
        "acked before the receiver had it: open it, then acknowledge it"
    assert steps(record(acknowledged_by="alice"), {**sent, "acknowledged": True}, **kw) == ["trigger"]
    assert steps(record(status="resolved", resolved_at=T + 600), sent, **kw) == ["resolve"]


def test_opsgenie_create_fits_the_documented_limits_and_types():
    body = opsgenie_create(record(title="y" * 400), source="Vigil", responders=[{"type": "team", "name": "ml"}])
    assert validate_create(body) == {}
    assert len(body["message"]) == 130 and body["alias"] == "vigil-incident-42"
    assert body["priority"] == "P1" and opsgenie_create(record(severity="warning"), source="Vigil",
                                                        responders=[])["priority"] == "P3"
    assert all(isinstance(v, str) for v in body["details"].values()), "Opsgenie details are strings"
    assert body["details"]["link_grafana"] == LINKS["grafana"]
    assert body["entity"] == "recommender v2" and body["responders"] == [{"type": "team", "name": "ml"}]
    assert opsgenie_action(record(acknowledged_by="alice"), "acknowledge", source="Vigil")["user"] == "alice"


def test_alertmanager_alert_labels_and_times():
    open_ = alertmanager_alert(record(), now=T + 60, ttl_s=240, extra_labels={"team": "ml"})
    assert open_["labels"] == {"team": "ml", "alertname": "VigilIncident", "model": "recommender",
                               "severity": "critical", "entity": "recommender v2",
                               "vigil_incident": "vigil-incident-42"}
    assert (open_["startsAt"], open_["endsAt"]) == (iso(T), iso(T + 300)), "open: ends a ttl from now"
    assert open_["annotations"]["grafana_url"] == LINKS["grafana"]
    assert open_["generatorURL"] == LINKS["grafana"]
    done = alertmanager_alert(record(status="resolved", resolved_at=T + 600), now=T + 700, ttl_s=240,
                              extra_labels={})
    assert done["endsAt"] == iso(T + 600), "resolved: ends when the incident resolved"


def test_a_shared_cause_maps_to_one_alert_listing_each_model_with_its_evidence():
    from alerts.receivers.record import group_record
    from tests.unit.monitor.test_receiver_writer import group_payload

    record = group_record(group_payload("critical"), prefix="prod", updated_at=T + 60)
    assert record["dedup_key"] == "prod-group-7" and record["model"] == "recommender, ranker"
    event = pagerduty_event(record, "trigger", KEY, source="")
    assert validate(event) == []
    assert event["payload"]["summary"].startswith("[critical] recommender, ranker: 2 models share one cause")
    lines = event["payload"]["custom_details"]["affected_models"]
    assert lines[0] == ("recommender (critical): p99 latency over its SLO "
                        "[slo_breach p99_latency: 0.8 vs threshold 0.5]")
    assert lines[1].startswith("ranker (warning)")
    body = opsgenie_create(record, source="vigil", responders=[])
    assert validate_create(body) == {}
    assert "model:ranker" in body["tags"] and "recommender (critical)" in body["description"]
    assert body["details"]["group_id"] == "7"
    alert = alertmanager_alert(record, now=T + 60, ttl_s=240, extra_labels={})
    assert alert["labels"]["alertname"] == "VigilSharedCause" and "model" not in alert["labels"]
    fewer = group_record(group_payload("critical", models=group_payload()["models"][:1]), prefix="prod",
                         updated_at=T + 120)
    assert alertmanager_alert(fewer, now=T + 120, ttl_s=240, extra_labels={})["labels"] == alert["labels"], \
        "a member leaving keeps the same Alertmanager alert"


def test_opsgenie_tags_fit_twenty_of_fifty_characters_for_long_names_and_big_groups():
    # A model name may be 100 characters (models[].name); Opsgenie takes at most 20 tags of
    # at most 50 characters, so `model:<name>` and a 20-model group must still fit.
    from alerts.receivers.record import group_record
    from tests.unit.monitor.test_receiver_writer import group_payload

    long = "recommendation-ranking-two-tower-retrieval-eu-west-1-production-" + "x" * 36
    body = opsgenie_create(record(model=long), source="Vigil", responders=[])
    assert validate_create(body) == {}
    assert body["tags"][0] == "vigil" and "severity:critical" in body["tags"]
    models = [{**group_payload()["models"][0], "model": f"model-{i:02d}"} for i in range(20)]
    group = group_record(group_payload("critical", models=models), prefix="vigil", updated_at=T + 60)
    body = opsgenie_create(group, source="Vigil", responders=[])
    assert validate_create(body) == {}
    assert {"vigil", "shared-cause", "severity:critical", "model:model-00"} <= set(body["tags"])


def test_an_escalation_past_an_acknowledged_alert_closes_it_and_opens_a_new_one():
    """The ack lapsed in Vigil (the incident escalated past the severity acknowledged), the
    backend's alert is still acknowledged: a new open call would fold into it and page no one."""
    acked = {"state": "acknowledged", "acknowledged": True, "severity": "warning"}
    assert steps(record(severity="critical"), acked, open_="trigger", ack="acknowledge", close="resolve") \
        == ["resolve", "trigger"]
    assert steps(record(severity="critical"), acked, open_="create", ack="acknowledge", close="close") \
        == ["close", "create"]
    note = opsgenie_action(record(severity="critical"), "close", source="Vigil")["note"]
    assert "Escalated to critical" in note and "Resolved" not in note
    resolved = record(status="resolved", resolved_at=T + 600)
    assert "Resolved" in opsgenie_action(resolved, "close", source="Vigil")["note"]


def test_a_held_members_escalation_updates_its_acknowledged_alert_and_remembers_the_ack():
    """Its shared cause pages for the escalation: the member's own acknowledged alert is
    updated, not closed and opened anew (a second page); once the member pages as itself
    again, that alert is still acknowledged on the backend, so its escalation opens a new one."""
    acked = {"state": "acknowledged", "acknowledged": True, "severity": "warning"}
    held = {**record(severity="critical"), HELD: True}
    assert steps(held, acked, open_="trigger", ack="acknowledge", close="resolve") == ["trigger"]
    after = sent_ref(held, acked)
    assert after["acknowledged"] and after["severity"] == "critical"
    assert steps(record(severity="critical"), after, open_="trigger", ack="acknowledge", close="resolve") \
        == ["resolve", "trigger"]
    assert not sent_ref(record(severity="critical"), after)["acknowledged"]


def test_an_update_missing_the_ack_pages_no_one_a_second_time_and_the_escalation_still_does():
    """An update built before the ack committed (acknowledged_by still None) and delivered after
    it, at the severity acknowledged: it was sent as resolve, then a trigger of `<key>~2`, a new
    page nobody acknowledged while Vigil showed the incident acknowledged."""
    kw = dict(open_="trigger", ack="acknowledge", close="resolve")
    acked = sent_ref(record(severity="warning", acknowledged_by="api:oncall"),
                     {"dedup_key": "vigil-incident-42", "state": "triggered", "severity": "warning",
                      "acknowledged": False})
    stale = record(severity="warning")
    assert [(a, r["dedup_key"]) for a, r in calls(stale, acked, **kw)] == [("trigger", "vigil-incident-42")]
    after = sent_ref(stale, acked)
    assert after["acknowledged"], "PagerDuty keeps the alert acknowledged: the next escalation must reopen it"
    escalated = record(severity="critical")  # the ack of the warning lapsed in Vigil
    assert [(a, r["dedup_key"]) for a, r in calls(escalated, after, **kw)] == \
        [("resolve", "vigil-incident-42"), ("trigger", "vigil-incident-42~2")]


def test_a_finding_read_from_a_partial_answer_says_so_to_pagerduty_opsgenie_and_alertmanager():
    """The page on-call opens says which number came from an answer a store missed."""
    why = "store 10.0.3.7:10901: connection refused"
    findings = [{"kind": "kpi_drop", "entity": "ctr", "value": -10.0, "threshold": -5.0,
                 "statistic": "kpi_change_pct", "evidence": {"partial": why}}]
    rec = record(findings=findings)
    pd = pagerduty_event(rec, "trigger", KEY, source="")["payload"]["custom_details"]["findings"]
    og = opsgenie_create(rec, source="Vigil", responders=[])["description"]
    am = alertmanager_alert(rec, now=T, ttl_s=600, extra_labels={})["annotations"]["findings"]
    for text in (pd[0], og, am):
        assert f"read from a partial answer: {why}" in text
