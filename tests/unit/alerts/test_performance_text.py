"""A performance drop in Slack: the realised figure beside the estimate, the reference and
the limit, and how much rests on labels (count, coverage, delay)."""
from __future__ import annotations

import json

from alerts.performance_text import performance_line
from alerts.slack_blocks import render_incident
from detectors.performance import JudgeParams, judge
from detectors.performance.windows import WindowPerformance

NOW = 1_800_000_000.0


def _finding(realised: dict | None, estimated: dict | None, labelled: int = 812) -> dict:
    w = WindowPerformance("3", NOW - 3600, NOW, 1000, labelled, realised, estimated, 7200.0, 9000.0)
    reference = {"accuracy": 0.861, "precision": 0.8, "recall": 0.8, "f1": 0.8, "roc_auc": 0.9}
    found = judge([w], reference, JudgeParams(model="churn", drop_pct=10))
    return next(f for f in found if f.entity == "accuracy").to_dict()


def test_realised_drop_shows_estimate_coverage_and_delay() -> None:
    line = performance_line(_finding({"accuracy": 0.712}, {"accuracy": 0.80}))
    assert "*accuracy* realised *0.712* vs reference 0.861: *-17.3%* (limit -10%)" in line
    assert "estimated (CBPE) 0.8" in line
    assert "812 labels · coverage 81% · median label delay 2 h" in line and "version 3" in line


def test_estimate_before_labels_says_it_is_an_estimate() -> None:
    line = performance_line(_finding(None, {"accuracy": 0.70}, labelled=0))
    assert "*accuracy* estimated *0.7*" in line and "labels not in yet" in line


def test_the_incident_message_carries_the_performance_line() -> None:
    finding = _finding({"accuracy": 0.712}, {"accuracy": 0.80})
    payload = {"incident_id": 9, "model": "churn", "severity": "critical", "status": "open",
               "title": "churn: accuracy -17.3%", "channel": "#churn", "opened_at": NOW, "updated_at": NOW,
               "resolved_at": None, "acknowledged_by": None, "findings": [finding], "causes": [],
               "suggested_action": "", "actions": [], "links": {}, "cold_start": False}
    _, blocks = render_incident(payload)
    text = json.dumps(blocks)
    assert "realised *0.712* vs reference 0.861" in text and "coverage 81%" in text
