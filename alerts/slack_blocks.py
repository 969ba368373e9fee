"""Slack Block Kit rendering of incidents and rollbacks: pure, payload dict in, blocks out.

The message answers, in this order: what is wrong (each value next to its threshold,
baseline and window), the ranked causes with their evidence, what to do, what Vigil
already did, where to look. Slack rejects a whole message for one oversized field
(`invalid_blocks`), so every limit from contracts/README.md section 6 is enforced
here by clipping with "…" and "+N more", never by hoping.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts import wording
from alerts.canary_text import canary_table
from alerts.lifecycle import IncidentStatus
from alerts.links import DRIFT_KINDS, link_list
from alerts.performance_text import is_performance, performance_line
from alerts.slack_text import (
    ACTION_ACK,
    ACTION_ROLLBACK,
    ACTION_SILENCE,
    ACTIONS_BLOCK,
    MAX_BLOCKS,
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_CAUSES_SHOWN,
    MAX_CONFIRM_BUTTON,
    MAX_CONFIRM_TEXT,
    MAX_CONFIRM_TITLE,
    MAX_CONTEXT_ELEMENTS,
    MAX_FALLBACK_TEXT,
    MAX_FINDINGS_SHOWN,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    RESOLVED_EMOJI,
    SEVERITY_EMOJI,
    action_line,
    cause_text,
    clip,
    escape,
    finding_line,
    fmt_duration,
    fmt_pct_score,
    fmt_time,
    require_field,
    rollback_done,
    rollback_target,
)
from alerts.wording import Wording


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(t) for t in texts[:MAX_CONTEXT_ELEMENTS]]}


def _packed_sections(title: str, lines: list[str], more: int, noun: str) -> list[dict[str, Any]]:
    """Lines packed into as few sections as fit the 3000-character limit."""
    if more > 0:
        lines = [*lines, f"_+{more} more {noun}_"]
    blocks: list[dict[str, Any]] = []
    current = title
    for line in lines:
        line = clip(line, MAX_SECTION_TEXT - 1)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > MAX_SECTION_TEXT:
            blocks.append(_section(current))
            current = line
        else:
            current = candidate
    if current:
        blocks.append(_section(current))
    return blocks


def _buttons(payload: Mapping[str, Any], model: str, incident_id: Any) -> dict[str, Any]:
    value = clip(f"{model}:{incident_id}", MAX_BUTTON_VALUE)
    elements: list[dict[str, Any]] = []
    if not payload.get("acknowledged_by"):
        elements.append(
            {"type": "button", "action_id": ACTION_ACK, "text": _plain("Acknowledge", MAX_BUTTON_TEXT),
             "value": value, "style": "primary"}
        )
    elements.append(
        {"type": "button", "action_id": ACTION_SILENCE, "text": _plain("Silence", MAX_BUTTON_TEXT), "value": value}
    )
    target = rollback_target(payload)
    if target is not None and not rollback_done(payload):
        current, previous = target
        elements.append(
            {
                "type": "button",
                "action_id": ACTION_ROLLBACK,
                "text": _plain(f"Roll back to v{previous}", MAX_BUTTON_TEXT),
                "value": value,
                "style": "danger",
                "confirm": {
                    "title": _plain(f"Roll back {model}?", MAX_CONFIRM_TITLE),
                    "text": _mrkdwn(
                        clip(
                            f"Move *{escape(model)}* from v{escape(current)} back to v{escape(previous)}. "
                            "The rollback is guarded and recorded in the audit log.",
                            MAX_CONFIRM_TEXT,
                        )
                    ),
                    "confirm": _plain("Roll back", MAX_CONFIRM_BUTTON),
                    "deny": _plain("Cancel", MAX_CONFIRM_BUTTON),
                    "style": "danger",
                },
            }
        )
    # The move the Roll back button shows travels back in the block id: a press on a message
    # drawn before the incident blamed another deploy must not make a move nobody confirmed.
    block_id = ACTIONS_BLOCK if target is None else f"{ACTIONS_BLOCK}:{target[0]}:{target[1]}"[:255]
    return {"type": "actions", "block_id": block_id, "elements": elements}


def _fit_blocks(blocks: list[dict[str, Any]], keep_tail: int) -> list[dict[str, Any]]:
    """At most MAX_BLOCKS: drop from the middle, keep the header and the last `keep_tail`."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    tail = blocks[len(blocks) - keep_tail:] if keep_tail else []
    head_room = MAX_BLOCKS - len(tail) - 1
    dropped = len(blocks) - len(tail) - head_room
    return [*blocks[:head_room], _context(f"_+{dropped} more blocks not shown_"), *tail]


# --------------------------------------------------------------------------- messages
def render_incident(payload: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for one incident; resolved incidents show no buttons."""
    model = str(require_field(payload, "model"))
    incident_id = require_field(payload, "incident_id")
    w = Wording.from_payload(payload)
    severity = str(payload.get("severity") or "warning")
    resolved = payload.get("status") == IncidentStatus.RESOLVED
    findings = [f for f in payload.get("findings") or [] if isinstance(f, Mapping)]
    causes = [c for c in payload.get("causes") or [] if isinstance(c, Mapping)]
    title = str(payload.get("title") or f"{model}: {len(findings)} finding{'s' if len(findings) != 1 else ''}")
    emoji = RESOLVED_EMOJI if resolved else SEVERITY_EMOJI.get(severity, ":warning:")
    prefix = "Resolved: " if resolved else ""

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"{emoji} {prefix}{title}", MAX_HEADER_TEXT)},
        _context(" · ".join(_meta(payload, model, incident_id, severity, resolved, w))),
    ]
    banner = cold_start_banner(payload, findings)
    if banner:
        blocks.append(_context(banner))
    blocks += _story(payload, findings, causes, resolved, w)
    tail = 0
    if not resolved:
        blocks.append(_buttons(payload, model, incident_id))
        tail = 1
    blocks = _fit_blocks(blocks, keep_tail=tail)

    # The notification text is mrkdwn too (a push, the channel list): data in it is escaped
    # like in the blocks, or a feature named `<!channel>` pings everyone through it.
    text = f"{emoji} [{severity.upper()}] {prefix}{escape(title)}"
    if causes:
        c0 = causes[0]
        text += f" — top cause: {escape(c0.get('entity') or c0.get('kind'))} ({fmt_pct_score(c0.get('score'))})"
    if payload.get("suggested_action") and not resolved:
        text += f" — {escape(payload['suggested_action'])}"
    return clip(text, MAX_FALLBACK_TEXT), blocks


def cold_start_banner(payload: Mapping[str, Any], findings: list[Mapping[str, Any]]) -> str | None:
    """Said only when true: a drift incident of a model still in cold start, where drift does
    not page. A latency or KPI incident in cold start pages as usual, so it gets no banner."""
    if not payload.get("cold_start") or not any(str(f.get("kind")) in DRIFT_KINDS for f in findings):
        return None
    days = (payload.get("display") or {}).get("cold_start_s")
    since = f"less than {wording.duration(days)}" if isinstance(days, (int, float)) else "recently"
    return (f":seedling: Cold start: this model was deployed {since} ago, so its drift is measured "
            "against the training reference and does not page on its own.")


def _meta(payload: Mapping[str, Any], model: str, incident_id: Any, severity: str, resolved: bool,
          w: Wording) -> list[str]:
    """The context line: which model and incident, how bad, since when, who has it."""
    meta = [f"*{escape(model)}*", f"incident #{escape(incident_id)}", severity.upper()]
    if payload.get("opened_at") is not None:
        meta.append(f"opened {fmt_time(payload['opened_at'], w)}")
    if resolved and payload.get("resolved_at") is not None:
        after = ""
        if payload.get("opened_at") is not None:
            after = f" after {fmt_duration(float(payload['resolved_at']) - float(payload['opened_at']))}"
        meta.append(f"*resolved* {fmt_time(payload['resolved_at'], w)}{after}")
    elif payload.get("updated_at") is not None:
        meta.append(f"updated {fmt_time(payload['updated_at'], w)}")
    if payload.get("acknowledged_by"):
        meta.append(f"acknowledged by {escape(payload['acknowledged_by'])}")
    return meta


def _story(payload: Mapping[str, Any], findings: list[Mapping[str, Any]], causes: list[Mapping[str, Any]],
           resolved: bool, w: Wording) -> list[dict[str, Any]]:
    """What is wrong, why, what to do, what Vigil did, where to look."""
    ranked = sorted(findings, key=lambda f: -(f.get("score") or 0.0))
    shown = ranked[:MAX_FINDINGS_SHOWN]
    blocks = _packed_sections(
        "*What is wrong*" if not resolved else "*What was wrong*",
        [performance_line(f) if is_performance(f) else finding_line(f, w) for f in shown]
        or ["_no findings recorded_"],
        len(ranked) - len(shown),
        "findings",
    )
    table = canary_table(findings)
    if table is not None:
        blocks.append({"type": "divider"})
        blocks += _packed_sections(table[0], table[1], 0, "metrics")
    if causes:
        blocks.append({"type": "divider"})
        blocks += _packed_sections(
            "*Likely causes, most likely first*",
            [cause_text(i + 1, c, w) for i, c in enumerate(causes[:MAX_CAUSES_SHOWN])],
            len(causes) - MAX_CAUSES_SHOWN,
            "causes",
        )
    if payload.get("suggested_action") and not resolved:
        blocks.append(_section(f"*Suggested action*\n{escape(payload['suggested_action'])}"))
    actions = [a for a in payload.get("actions") or [] if isinstance(a, Mapping)]
    if actions:
        blocks += _packed_sections("*What Vigil did*", [action_line(a, w) for a in actions], 0, "actions")
    # Slack reads `|` as the label's start and `>` as the link's end: escaped (and `|`
    # percent-encoded, the same URL to a browser), a runbook anchor no longer cut the link.
    links = link_list(payload.get("links") or {})
    link_parts = [f"<{escape(url).replace('|', '%7C')}|{label}>" for label, url in links]
    if link_parts:
        blocks.append(_context(*link_parts))
    return blocks


def render_rollback(payload: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A rollback notice, posted in the incident's thread.

    Payload: model, from_version, to_version, status ("done", "dry_run", "refused",
    "failed"), optional incident_id, at, reason, detail, actor.
    """
    model = str(require_field(payload, "model"))
    a = {k: v for k, v in payload.items() if k != "actor"}  # the actor is named once, in the first line
    a.setdefault("kind", "rollback")
    status = str(payload.get("status") or "?")
    who = f" by {escape(payload['actor'])}" if payload.get("actor") else ""
    incident = f" (incident #{escape(payload['incident_id'])})" if payload.get("incident_id") is not None else ""
    line = action_line(a, Wording.from_payload(payload)).removeprefix("• ")
    blocks = [_section(f"*{escape(model)}*{incident}{who}\n{line}")]
    text = escape(  # mrkdwn, as in render_incident
        f"Rollback of {model} v{payload.get('from_version')} → v{payload.get('to_version')}: "
        f"{status.replace('_', ' ')}" + (f" — {payload['reason']}" if payload.get("reason") else "")
    )
    return clip(text, MAX_FALLBACK_TEXT), blocks
