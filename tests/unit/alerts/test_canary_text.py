"""The canary verdict table in the incident's Slack message: each metric's verdict with
both versions' values, the effect next to its threshold and the p-value next to alpha."""
from __future__ import annotations

import numpy as np

from alerts.canary_text import canary_table
from alerts.payload import suggested_action
from alerts.slack_blocks import render_incident
from alerts.slack_text import MAX_SECTION_TEXT
from detectors.canary import MetricRule, judge_metric
from detectors.records import Finding, FindingKind

rng = np.random.default_rng(3)
CHAMPION = 0.2 * rng.lognormal(0, 0.05, 40)


def canary_finding() -> dict:
    fail = judge_metric(MetricRule("p99_latency", fail_effect=0.1), CHAMPION, CHAMPION * 1.5)
    ok = judge_metric(MetricRule("ctr", worse="down"), CHAMPION, CHAMPION)
    short = judge_metric(MetricRule("error_rate", fail_above=0.05), CHAMPION, CHAMPION[:3])
    f = Finding(kind=FindingKind.CANARY_FAIL, entity="p99_latency", value=fail.effect or 0, threshold=0.1,
                window_start=0, window_end=3600, onset=3600, model="recommender", statistic="effect",
                message="canary v2 vs champion v1: p99_latency failed",
                evidence={"challenger_version": "2", "champion_version": "1",
                          "verdict_table": [ok.to_dict(), short.to_dict(), fail.to_dict()]})
    return f.to_dict()


def test_the_table_lists_failures_first_with_the_numbers_next_to_the_thresholds():
    table = canary_table([canary_finding()])
    assert table is not None
    title, lines = table
    assert title == "*Canary: challenger v2 vs champion v1*"
    assert [line.split("*")[1] for line in lines] == ["p99_latency", "error_rate", "ctr"]
    fail = lines[0]
    assert ":x: *p99_latency*: fail" in fail and "effect +50.1% (fail at +10.0%)" in fail
    assert "vs alpha 0.05" in fail and "n 40/40 (min 10)" in fail
    assert ":grey_question: *error_rate*: inconclusive" in lines[1] and "3 points &lt; 10 needed" in lines[1]
    assert "absolute limit: above 0.05 fails" in lines[1]
    assert canary_table([{"kind": "kpi_drop"}]) is None


def test_the_incident_message_carries_the_table_and_says_the_challenger_was_pulled():
    actions = [{"kind": "canary_pull", "status": "done", "from_version": "2", "to_version": "1", "actor": "vigil",
                "at": 3600.0, "reason": "canary v2 failed", "detail": "moved mlflow_challenger_alias"}]
    payload = {"incident_id": 7, "model": "recommender", "severity": "warning", "status": "open",
               "title": "recommender: canary failed on p99_latency", "findings": [canary_finding()], "causes": [],
               "actions": actions, "suggested_action": suggested_action([], actions, "open", "recommender")}
    _, blocks = render_incident(payload)
    texts = "\n".join(b["text"]["text"] for b in blocks if b.get("type") == "section")
    assert "*Canary: challenger v2 vs champion v1*" in texts and "effect +50.1%" in texts
    assert "Vigil pulled challenger v2" in texts and "Canary pull v2 → v1: *done*" in texts
    assert all(len(b["text"]["text"]) <= MAX_SECTION_TEXT for b in blocks if b.get("type") == "section")
