"""A model joins a shared cause's page with a finding read from a partial answer (a store
down): the group's page must say which number came from it, as the model's own page does."""
from __future__ import annotations

from types import SimpleNamespace

from alerts.receivers.mapping import alertmanager_alert, opsgenie_create, pagerduty_event
from alerts.receivers.record import group_record
from alerts.slack_replies import render_group
from monitor.cycle.grouping import _summary

WHY = "store 10.0.3.7:10901: connection refused"
T = 1_800_000_000.0


def _group_payload() -> dict:
    ctr = {"kind": "kpi_drop", "entity": "ctr", "value": -10.0, "threshold": -5.0, "statistic": "kpi_change_pct",
           "message": "ctr fell 10 %", "evidence": {"partial": WHY}}
    p99 = {"kind": "slo_breach", "entity": "p99_latency", "value": 0.8, "threshold": 0.5, "message": "p99 0.8 s"}
    rows = [SimpleNamespace(model=m, id=i, severity="critical", open=True, title=f"{m}: CTR fell", causes=[],
                            findings=f) for i, (m, f) in enumerate([("recommender", [ctr]), ("ranker", [p99])], 1)]
    members = [{"model": r.model, "incident_id": r.id, "severity": r.severity, "open": True, "muted": False,
                **_summary(r)} for r in rows]
    return {"group_id": 7, "cause_kind": "deploy", "cause": "feature-store v9", "severity": "critical",
            "status": "open", "change": "first", "opened_at": T, "at": T, "models": members}


def test_a_member_finding_read_from_a_partial_answer_says_so_on_the_shared_cause_page():
    payload = _group_payload()
    _, blocks = render_group(payload)
    slack = "\n".join(b["text"]["text"] for b in blocks if b.get("type") == "section")
    assert f"read from a partial answer: {WHY}" in slack
    assert slack.count("read from a partial answer") == 1  # the other model's finding was read whole
    rec = group_record(payload, prefix="vigil", updated_at=T + 60)
    pd = pagerduty_event(rec, "trigger", "0123456789abcdef0123456789abcdef", source="")["payload"]["custom_details"]
    og = opsgenie_create(rec, source="Vigil", responders=[])["description"]
    am = alertmanager_alert(rec, now=T, ttl_s=600, extra_labels={})["annotations"]
    for text in (str(pd), og, str(am)):
        assert f"read from a partial answer: {WHY}" in text, text
