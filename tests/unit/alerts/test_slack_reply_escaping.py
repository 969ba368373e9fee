"""Slack mrkdwn has &, <, > escaped in text that comes from data (feature and entity names,
log lines) in every message: the incident message, its threaded replies and the
shared-cause message; only the configured mentions go out raw."""
from __future__ import annotations

from alerts.slack_blocks import render_incident, render_rollback
from alerts.slack_replies import render_group, render_reply

TITLE = "recommender: feature drift (clicks<7d&mobile>)"


def _mrkdwn_texts(blocks):
    out = []
    for b in blocks:
        t = b.get("text")
        if isinstance(t, dict) and t.get("type") == "mrkdwn":
            out.append(t["text"])
        for e in b.get("elements") or []:
            if isinstance(e, dict) and e.get("type") == "mrkdwn":
                out.append(e["text"])
    return out


def test_incident_message_escapes_the_feature_name():  # control: the main message is right
    _, blocks = render_incident({"model": "recommender", "incident_id": 1, "severity": "warning", "title": TITLE,
                                 "findings": [{"kind": "feature_drift", "entity": "clicks<7d&mobile>", "value": 0.3,
                                               "threshold": 0.2, "statistic": "psi"}]})
    joined = "\n".join(_mrkdwn_texts(blocks))
    assert "clicks&lt;7d&amp;mobile&gt;" in joined and "clicks<7d" not in joined


def test_resolve_reply_escapes_the_title():
    _, blocks = render_reply({"model": "recommender", "change": "resolved", "title": TITLE, "severity": "warning",
                              "opened_at": 0, "resolved_at": 600, "mentions": ["<@U0OWNER>"]})
    (text,) = _mrkdwn_texts(blocks)
    print(text)
    assert "clicks<7d&mobile>" not in text, "raw < & > in mrkdwn: Slack parses <7d&mobile> as a link/control sequence"


def test_shared_cause_message_escapes_log_lines():
    payload = {"group_id": 1, "severity": "critical", "status": "open", "cause_kind": "service", "cause": "recsys-api",
               "mentions": [],
               "models": [{"model": "recommender", "open": True, "severity": "critical", "incident_id": 1,
                           "title": "recommender: log anomaly in recsys-api",
                           "findings": [{"kind": "log_anomaly", "entity": "recsys-api",
                                         "message": "new template: user said <!channel> & left"}]},
                          {"model": "ranker", "open": True, "severity": "warning", "incident_id": 2,
                           "title": "ranker: SLO p99 breached", "findings": []}]}
    _, blocks = render_group(payload)
    joined = "\n".join(_mrkdwn_texts(blocks))
    print(joined)
    assert "<!channel>" not in joined, "a log line's <!channel> would notify the whole channel"


def test_the_notification_text_of_every_message_escapes_data_too():
    """The top-level `text` is what Slack puts in the push notification and the channel
    list; it went out raw, so a feature named `<!channel>` (a column of the samples) or a
    cause `<!here>` notified the whole channel through the fallback, and `a<b` came out
    cut, although the blocks beside it were escaped."""
    ping = "<!channel>"
    text, _ = render_incident({"model": "recommender", "incident_id": 1, "severity": "warning",
                               "title": f"recommender: feature drift ({ping})",
                               "causes": [{"kind": "feature", "entity": "<!here>", "score": 0.9}],
                               "suggested_action": "check <https://evil.example|the runbook>",
                               "findings": []})
    assert "<!" not in text and "<https" not in text and "&lt;!channel&gt;" in text
    text, _ = render_rollback({"model": "recommender", "from_version": "2", "to_version": "1",
                               "status": "done", "reason": f"Slack button {ping}"})
    assert "<!" not in text and "&lt;!channel&gt;" in text
    text, _ = render_group({"group_id": 1, "severity": "critical", "status": "open", "cause_kind": "service",
                            "cause": ping, "mentions": ["<@U0OWNER>"],
                            "models": [{"model": "recommender", "open": True, "severity": "critical",
                                        "incident_id": 1, "title": "t", "findings": []}]})
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and text.endswith("<@U0OWNER>")
