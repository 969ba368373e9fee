"""Block Kit rendering: what a person reads, and that Slack's limits always hold."""
from __future__ import annotations

from typing import Any

import pytest

from alerts.slack_blocks import render_incident, render_rollback
from alerts.slack_text import fmt_duration, fmt_number, fmt_value
from correlators.incident import Cause, CauseKind
from detectors.records import DeployEvent, Direction, Finding, FindingKind

try:
    from tests.fakes.slack_server import validate_blocks
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.slack_server import validate_blocks

NOW = 1_795_259_999.0


def payload(**over: Any) -> dict[str, Any]:
    findings = [
        Finding(FindingKind.FEATURE_DRIFT, "user_age", 0.312, 0.2, NOW - 3600, NOW, NOW - 900, score=0.8,
                model="recommender", direction=Direction.UP, baseline=0.02, statistic="psi"),
        Finding(FindingKind.SLO_BREACH, "p99 latency", 0.4512, 0.3, NOW - 1800, NOW, NOW - 900, score=0.4,
                statistic="p99_latency_s", service="ranker"),
        Finding(FindingKind.GPU_SATURATION, "gpu-node-1/gpu 0", 0.97, 0.95, NOW - 600, NOW, NOW - 600, score=0.3,
                statistic="fb_used_ratio"),
    ]
    causes = [
        Cause(CauseKind.DEPLOY, "recommender v3", 0.823, "Version 3 took the champion alias 4 minutes before onset.",
              evidence={"lag_s": 240, "features_drifted": ["user_age", "country", "device", "hour"]},
              deploy=DeployEvent("recommender", "champion", "3", "2", NOW - 1140)),
        Cause(CauseKind.GPU_SATURATION, "gpu-node-1/gpu 0", 0.31, "Framebuffer near full <since> 10 min & rising."),
    ]
    p: dict[str, Any] = {
        "incident_id": 7, "model": "recommender", "severity": "critical", "status": "open",
        "title": "recommender: drift and latency after deploy v3", "channel": "#recsys-alerts",
        "opened_at": NOW - 900, "updated_at": NOW, "resolved_at": None, "acknowledged_by": None,
        "findings": [f.to_dict() for f in findings], "causes": [c.to_dict() for c in causes],
        "suggested_action": "Roll back recommender to v2.", "actions": [],
        "links": {"grafana": "http://grafana/d/abc?viewPanel=3", "drift_report": "http://vigil/reports/7.html"},
        "cold_start": False,
    }
    p.update(over)
    return p


def section_texts(blocks: list[dict]) -> str:
    parts = []
    for b in blocks:
        if b["type"] in ("section", "header"):
            parts.append(b["text"]["text"])
        elif b["type"] == "context":
            parts += [e["text"] for e in b["elements"]]
    return "\n".join(parts)


def buttons(blocks: list[dict]) -> dict[str, dict]:
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_what_is_wrong_puts_each_value_next_to_its_threshold_and_window():
    _, blocks = render_incident(payload())
    text = section_texts(blocks)
    assert ("*user_age* population stability index (PSI) 0.312, above the threshold 0.2 · last 1 h"
            in text)
    assert "*p99 latency* is 451 ms, above its SLO of 300 ms · last 30 min · service ranker" in text
    assert "GPU memory (framebuffer) used averaged 97 %, at or above 95 %" in text


def test_causes_are_ranked_with_score_explanation_and_evidence():
    _, blocks = render_incident(payload())
    text = section_texts(blocks)
    first, second = text.index("*1. recommender v3*"), text.index("*2. gpu-node-1/gpu 0*")
    assert first < second
    assert "82% confidence" in text and "31% confidence" in text
    assert "champion → v3 (was v2)" in text
    assert "features drifted: user_age, country, device +1 more" in text
    # user text cannot inject Slack markup
    assert "&lt;since&gt; 10 min &amp; rising" in text


def test_suggested_action_links_and_fallback_text():
    text, blocks = render_incident(payload())
    body = section_texts(blocks)
    assert "*Suggested action*\nRoll back recommender to v2." in body
    assert "<http://grafana/d/abc?viewPanel=3|" in body and "<http://vigil/reports/7.html|" in body
    assert "[CRITICAL]" in text and "recommender v3 (82%)" in text


def test_buttons_carry_model_and_incident_and_rollback_asks_for_confirmation():
    _, blocks = render_incident(payload())
    b = buttons(blocks)
    assert set(b) == {"ack", "silence", "rollback"}
    assert {e["value"] for e in b.values()} == {"recommender:7"}
    assert "v2" in b["rollback"]["text"]["text"]
    assert b["rollback"]["confirm"]["confirm"]["text"] == "Roll back"


def test_no_rollback_button_without_a_target_or_after_a_rollback():
    no_deploy = payload(causes=[c for c in payload()["causes"] if c["kind"] != "deploy"])
    assert "rollback" not in buttons(render_incident(no_deploy)[1])
    done = payload(actions=[{"kind": "rollback", "from_version": "3", "to_version": "2", "status": "done",
                             "at": NOW, "reason": "auto", "detail": "alias moved", "actor": "vigil"}])
    _, blocks = render_incident(done)
    assert "rollback" not in buttons(blocks)
    assert "Rollback v3 → v2: *done* by vigil" in section_texts(blocks)
    dry = payload(actions=[{**done["actions"][0], "status": "dry_run"}])
    assert "rollback" in buttons(render_incident(dry)[1])


def test_acknowledged_incident_shows_who_and_drops_the_ack_button():
    _, blocks = render_incident(payload(acknowledged_by="alice"))
    assert "acknowledged by alice" in section_texts(blocks)
    assert "ack" not in buttons(blocks)


def test_resolved_incident_shows_resolution_and_no_buttons():
    text, blocks = render_incident(payload(status="resolved", resolved_at=NOW + 3600))
    assert blocks[0]["text"]["text"].startswith(":white_check_mark: Resolved:")
    assert "after 1h 15m" in section_texts(blocks)
    assert not buttons(blocks)
    assert "Resolved" in text


def test_cold_start_banner_only_on_a_drift_incident_in_cold_start():
    # a drift incident in cold start: drift does not page, and the message says so
    _, blocks = render_incident(payload(cold_start=True, display={"cold_start_s": 7 * 86400}))
    assert "Cold start: this model was deployed less than 7 days ago" in section_texts(blocks)
    # a latency incident in cold start pages as usual: no banner that would say otherwise
    latency_only = payload(cold_start=True)
    latency_only["findings"] = [f for f in latency_only["findings"] if f["kind"] != "feature_drift"]
    assert "Cold start" not in section_texts(render_incident(latency_only)[1])
    # a drift incident after cold start: no banner either
    assert "Cold start" not in section_texts(render_incident(payload(cold_start=False))[1])


@pytest.mark.parametrize("n_findings", [0, 1, 60, 500])
def test_block_kit_limits_hold_for_any_size(n_findings):
    f0 = payload()["findings"][0]
    findings = [{**f0, "entity": f"f{i}-" + "e" * 300, "message": "m" * 5000, "score": i / 1000}
                for i in range(n_findings)]
    causes = [{"kind": "service", "entity": "s" * 500, "score": 0.5, "explanation": "x" * 10_000,
               "evidence": {f"k{j}": ["v" * 400] * 10 for j in range(50)}, "deploy": None} for _ in range(40)]
    p = payload(title="T" * 1000, findings=findings, causes=causes, suggested_action="a" * 10_000,
                actions=[{"kind": "rollback", "from_version": "1" * 300, "to_version": "2" * 300,
                          "status": "failed", "at": NOW, "reason": "r" * 5000, "detail": "d" * 5000}] * 30)
    p["causes"][0]["kind"] = "deploy"
    p["causes"][0]["deploy"] = {"model": "m", "alias": "a", "version": "9" * 500, "previous_version": "8" * 500,
                                "at": NOW, "source": "registry"}
    text, blocks = render_incident(p)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= 50
    assert len(text) <= 4000
    assert len(blocks[0]["text"]["text"]) <= 150 and blocks[0]["text"]["text"].endswith("…")
    if n_findings > 20:
        assert f"+{n_findings - 20} more findings" in section_texts(blocks)
    assert "+35 more causes" in section_texts(blocks)


def test_findings_are_listed_strongest_first():
    p = payload()
    p["findings"] = list(reversed(p["findings"]))
    text = section_texts(render_incident(p)[1])
    assert text.index("user_age") < text.index("p99 latency") < text.index("*gpu-node-1/gpu 0* GPU memory")


def test_missing_required_field_is_named():
    p = payload()
    del p["incident_id"]
    with pytest.raises(ValueError, match="payload.incident_id"):
        render_incident(p)


def test_nan_values_do_not_break_rendering():
    p = payload()
    p["findings"][0]["value"] = None  # NaN after json_safe
    assert "population stability index (PSI) n/a" in section_texts(render_incident(p)[1])


@pytest.mark.parametrize(
    "value,expected",
    [(0.31234, "0.312"), (12.345, "12.3"), (12345.0, "12,300"), (999.7, "1,000"), (0.000012345, "1.23e-05"),
     (0, "0"), (-7.25, "-7.25"), (None, "n/a"), (float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf")],
)
def test_numbers_have_three_significant_digits(value, expected):
    assert fmt_number(value) == expected


@pytest.mark.parametrize(
    "value,stat,expected",
    [(-7.2, "kpi_change_pct", "-7.2 %"), (0.97, "fb_used_ratio", "97 %"), (0.25, "p99_latency_s", "250 ms"),
     (1.5, "latency_seconds", "1.5 s"), (900, "lag_s", "15 min"), (250, "p50_ms", "250 ms"), (0.31, "psi", "0.31")],
)
def test_values_are_shown_in_their_unit(value, stat, expected):
    assert fmt_value(value, stat) == expected


def test_durations():
    assert [fmt_duration(s) for s in (45, 300, 3600, 5400, 7 * 86400)] == ["45s", "5m", "1h", "1h 30m", "7d"]


def test_rollback_notice():
    text, blocks = render_rollback({"model": "recommender", "incident_id": 7, "from_version": "3",
                                    "to_version": "2", "status": "refused", "reason": "cool-down: last 20 min ago",
                                    "at": NOW, "actor": "alice"})
    assert text == "Rollback of recommender v3 → v2: refused — cool-down: last 20 min ago"
    assert blocks[0]["text"]["text"].count("by alice") == 1 and validate_blocks(blocks) == []


def test_the_fake_validator_rejects_what_slack_rejects():
    # keeps the limit tests above honest: the validator they rely on does find violations
    bad = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}},
        {"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "v" * 2001,
                                          "text": {"type": "plain_text", "text": "b" * 76}}]},
    ] + [{"type": "divider"}] * 48
    errors = validate_blocks(bad)
    assert "no more than 50 items allowed [json-pointer:/blocks]" in errors
    assert "must be less than 151 characters [json-pointer:/blocks/0/text/text]" in errors
    assert "must be less than 3001 characters [json-pointer:/blocks/1/text/text]" in errors
    assert "must be less than 76 characters [json-pointer:/blocks/2/elements/0/text/text]" in errors
    assert "must be less than 2001 characters [json-pointer:/blocks/2/elements/0/value]" in errors


def test_evidence_times_are_shown_as_dates_not_numbers():
    from alerts.slack_text import fmt_evidence

    text = fmt_evidence({"deployed_at": 1795165200.0, "minutes_before_onset": 3.0})
    assert "deployed at: 2026-11-20 09:00 UTC" in text
    assert "1795165200" not in text and "1.8e+09" not in text and "minutes before onset: 3" in text
