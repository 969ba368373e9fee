"""Slack bodies for what the lifecycle adds to an incident's message: the threaded reply
of a state change (escalation, resolve) with its @-mentions, and the one message of a
shared cause that lists the affected models with their evidence."""
from __future__ import annotations

from typing import Any

from alerts.slack_text import escape
from detectors.records import PARTIAL_WORDS

_MAX_SECTION = 2900  # Slack's section text limit is 3000


def _mentions(payload: dict[str, Any]) -> str:
    return " ".join(str(m) for m in payload.get("mentions") or [])


def _duration(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def render_reply(payload: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """'Escalated to critical (was warning): <why>. <@U…>', 'Resolved after 42 min. <!subteam^S…>' or
    'still critical, open for 4.0 h: <why>' (a repeat of an unacknowledged incident)."""
    # Data (names, titles, reasons) is escaped: `<!channel>` in a log template must not ping
    # anyone; only the configured mentions go out raw, after the text is cut to fit.
    model, change = escape(payload["model"]), payload["change"]
    who = _mentions(payload)
    if change == "escalated":
        why = f": {escape(payload['reason'])}" if payload.get("reason") else ""
        text = (f":rotating_light: {model} escalated to *{escape(payload['severity'])}* "
                f"(was {escape(payload.get('previous_severity') or 'warning')}){why}")
    elif change == "resolved":
        took = ""
        if payload.get("resolved_at") is not None and payload.get("opened_at") is not None:
            took = f" after {_duration(float(payload['resolved_at']) - float(payload['opened_at']))}"
        text = f":white_check_mark: {model} resolved{took}: {escape(payload.get('title') or '')}".rstrip(": ")
    elif change == "repeated":  # repeat_interval: an edit notifies no one, a reply reminds
        took = ""
        if payload.get("at") is not None and payload.get("opened_at") is not None:
            took = f", open for {_duration(float(payload['at']) - float(payload['opened_at']))}"
        why = f": {escape(payload['reason'])}" if payload.get("reason") else ""
        text = f":bell: {model} is still *{escape(payload['severity'])}*{took}{why}"
    else:
        raise ValueError(f"change: expected 'escalated', 'resolved' or 'repeated', got {change!r}")
    text = f"{text[:_MAX_SECTION - len(who) - 1]} {who}".strip()
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def render_group(payload: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """One message for a shared cause: the cause, then each affected model and its evidence."""
    models = payload.get("models") or []
    open_n = sum(1 for m in models if m.get("open"))
    resolved = payload.get("status") == "resolved"
    head = (f"{':white_check_mark: Resolved' if resolved else ':rotating_light: ' + str(payload['severity']).upper()}"
            f": {len(models)} models share one cause: {payload['cause_kind']} {payload['cause']}")  # plain text
    head = f"{head} ({open_n} open)" if not resolved else head
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": head[:150]}}]
    text = escape(head)  # the notification text is mrkdwn: the cause must not ping (`<!channel>`)
    for m in models[:20]:
        state = ("open, muted" if m.get("muted") else "open") if m.get("open") else "resolved"
        lines = [f"*{escape(m['model'])}* — {escape(m.get('severity'))}, {state} (incident {m.get('incident_id')})"]
        if m.get("title"):
            lines.append(escape(m["title"]))
        for f in (m.get("findings") or [])[:3]:
            lines.append("• " + escape(f.get("message") or f"{f.get('kind')} on {f.get('entity')}"))
            if f.get("partial"):  # its number may be a missing store's share, not the model's
                lines.append(f"      :warning: _{PARTIAL_WORDS}: {escape(f['partial'])}_")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:_MAX_SECTION]}})
    explanation = next((m.get("cause_explanation") for m in models if m.get("cause_explanation")), "")
    if explanation:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(explanation)[:_MAX_SECTION]}]})
    who = _mentions(payload)
    if who and not resolved:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": who}})
        text = f"{text} {who}"
    return text, blocks
