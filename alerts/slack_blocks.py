"""Slack Block Kit rendering of incidents and rollbacks: pure, payload dict in, blocks out.

The message answers, in this order: what is wrong (each value next to its threshold,
baseline and window), the ranked causes with their evidence, what to do, what Vigil
already did, where to look. Slack rejects a whole message for one oversized field
(`invalid_blocks`), so every limit from contracts/README.md section 6 is enforced
here by clipping with "…" and "+N more", never by hoping.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Mapping

# Block Kit limits (contracts/README.md, section 6).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_TEXT = 4000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30

# What a reader can take in; the rest is counted, not shown.
MAX_FINDINGS_SHOWN = 20
MAX_CAUSES_SHOWN = 5
MAX_EVIDENCE_ITEMS = 5
MAX_EVIDENCE_VALUE = 160
MAX_MESSAGE_CHARS = 240
MAX_EXPLANATION_CHARS = 1200

ELLIPSIS = "…"

ACTION_ACK = "ack"
ACTION_SILENCE = "silence"
ACTION_ROLLBACK = "rollback"
ACTION_IDS = (ACTION_ACK, ACTION_SILENCE, ACTION_ROLLBACK)

_SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}
_RESOLVED_EMOJI = ":white_check_mark:"
_ACTION_STATUS_EMOJI = {
    "done": ":white_check_mark:",
    "dry_run": ":test_tube:",
    "refused": ":no_entry:",
    "failed": ":x:",
}


# --------------------------------------------------------------------------- numbers and text
def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def escape(text: Any) -> str:
    """Slack mrkdwn control characters; user text such as a log line must not become a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _as_number(value: Any) -> float | str:
    """A finite float, or the text to show instead ("n/a", or the escaped value)."""
    if value is None or isinstance(value, bool):
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return escape(value)
    return v if math.isfinite(v) else "n/a"


def fmt_number(value: Any) -> str:
    """Three significant digits, thousands separated: 0.312, 12.3, 12,300, 1.23e-05."""
    v = _as_number(value)
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    rounded = float(f"{v:.3g}")
    a = abs(rounded)
    if a >= 1000:
        return f"{rounded:,.0f}"
    if a >= 1e-3:
        return f"{rounded:.3g}"
    return f"{rounded:.2e}"


def fmt_seconds(value: Any) -> str:
    """A latency or duration in the unit a person reads it in: 250 ms, 1.5 s, 12 min."""
    v = _as_number(value)
    if isinstance(v, str):
        return v
    a = abs(v)
    if a == 0:
        return "0 s"
    if a < 1e-3:
        return f"{fmt_number(v * 1e6)} µs"
    if a < 1:
        return f"{fmt_number(v * 1e3)} ms"
    if a < 120:
        return f"{fmt_number(v)} s"
    if a < 7200:
        return f"{fmt_number(v / 60)} min"
    return f"{fmt_number(v / 3600)} h"


def fmt_duration(seconds: Any) -> str:
    """A window length: 45s, 5m, 1h, 1h 30m, 7d."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(s) or s < 0:
        return "n/a"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        n, s = divmod(s, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts[:2])


def fmt_value(value: Any, statistic: str) -> str:
    """A statistic's value in its unit, read from the statistic's name."""
    stat = (statistic or "").lower()
    if stat.endswith(("_pct", "_percent")) or stat in ("pct", "percent"):
        return f"{fmt_number(value)}%"
    if stat.endswith(("_ratio", "_fraction")):
        try:
            return f"{fmt_number(float(value) * 100)}%"
        except (TypeError, ValueError):
            return fmt_number(value)
    if stat.endswith(("_s", "_seconds", "_sec")):
        return fmt_seconds(value)
    if stat.endswith("_ms"):
        try:
            return fmt_seconds(float(value) / 1000)
        except (TypeError, ValueError):
            return fmt_number(value)
    return fmt_number(value)


def fmt_time(ts: Any) -> str:
    """Slack date token: each reader sees their own time zone; the fallback is UTC."""
    try:
        t = float(ts)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(t):
        return "n/a"
    fallback = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(t)}^{{date_short_pretty}} {{time}}|{fallback}>"


def fmt_pct_score(score: Any) -> str:
    try:
        return f"{round(float(score) * 100)}%"
    except (TypeError, ValueError):
        return "n/a"


def _fmt_evidence_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return fmt_number(value)
    if isinstance(value, (list, tuple)):
        shown = [_fmt_evidence_value(v) for v in value[:3]]
        more = f" +{len(value) - 3} more" if len(value) > 3 else ""
        return clip(", ".join(shown), MAX_EVIDENCE_VALUE) + more
    if isinstance(value, dict):
        return escape(clip(json.dumps(value, default=str, sort_keys=True), MAX_EVIDENCE_VALUE))
    return escape(clip(str(value), MAX_EVIDENCE_VALUE))


_TIME_KEYS = {"at", "onset", "from", "until", "breach_start", "saturated_from", "saturated_until"}


def _is_time_key(key: str) -> bool:
    """Evidence values that are epoch seconds: shown as times, not as 1.8e9."""
    return key in _TIME_KEYS or key.endswith("_at")


def fmt_evidence(evidence: Mapping[str, Any] | None) -> str:
    if not evidence:
        return ""
    items = [(k, v) for k, v in evidence.items() if v is not None and v != "" and v != [] and v != {}]
    shown = [f"{escape(k)}: {fmt_time(v) if _is_time_key(k) else _fmt_evidence_value(v)}"
             for k, v in items[:MAX_EVIDENCE_ITEMS]]
    more = f" · +{len(items) - MAX_EVIDENCE_ITEMS} more" if len(items) > MAX_EVIDENCE_ITEMS else ""
    return " · ".join(shown) + more


# --------------------------------------------------------------------------- pieces
def _require(payload: Mapping[str, Any], field: str) -> Any:
    if field not in payload or payload[field] is None:
        raise ValueError(f"payload.{field}: required for a Slack message, missing")
    return payload[field]


def finding_line(f: Mapping[str, Any]) -> str:
    """'<entity>: <statistic> <value> vs threshold <threshold> (baseline …) over <window>'."""
    stat = f.get("statistic") or f.get("kind") or "value"
    entity = escape(f.get("entity") or f.get("kind") or "?")
    line = (
        f"*{entity}*: {escape(stat)} *{fmt_value(f.get('value'), stat)}* "
        f"vs threshold {fmt_value(f.get('threshold'), stat)}"
    )
    if f.get("baseline") is not None:
        # A change statistic ("kpi_change_pct") is relative to a baseline level in the KPI's own unit.
        base_stat = "" if "change" in str(stat).lower() else stat
        line += f" (baseline {fmt_value(f.get('baseline'), base_stat)})"
    ws, we = f.get("window_start"), f.get("window_end")
    if ws is not None and we is not None:
        try:
            line += f" over {fmt_duration(float(we) - float(ws))}"
        except (TypeError, ValueError):
            pass
    if f.get("service") and f.get("service") != f.get("entity"):
        line += f" · service {escape(f['service'])}"
    if f.get("message"):
        line += f"\n      _{escape(clip(str(f['message']), MAX_MESSAGE_CHARS))}_"
    return "• " + line


def cause_text(rank: int, c: Mapping[str, Any]) -> str:
    kind = str(c.get("kind") or "unknown").replace("_", " ")
    head = f"*{rank}. {escape(c.get('entity') or kind)}* — {fmt_pct_score(c.get('score'))} confidence ({kind})"
    lines = [head]
    if c.get("explanation"):
        lines.append(escape(clip(str(c["explanation"]), MAX_EXPLANATION_CHARS)))
    deploy = c.get("deploy")
    if isinstance(deploy, Mapping) and deploy.get("version") is not None:
        was = f" (was v{escape(deploy['previous_version'])})" if deploy.get("previous_version") else ""
        alias = escape(deploy.get("alias") or "alias")
        lines.append(f"Deploy: {alias} → v{escape(deploy['version'])}{was} at {fmt_time(deploy.get('at'))}")
    ev = fmt_evidence(c.get("evidence"))
    if ev:
        lines.append(f"_Evidence:_ {ev}")
    return "\n".join(lines)


def rollback_target(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(current version, version to go back to) from the best-ranked deploy cause."""
    for c in payload.get("causes") or []:
        deploy = c.get("deploy") if isinstance(c, Mapping) else None
        if str(c.get("kind")) == "deploy" and isinstance(deploy, Mapping) and deploy.get("previous_version"):
            return str(deploy.get("version")), str(deploy["previous_version"])
    return None


def rollback_done(payload: Mapping[str, Any]) -> bool:
    return any(
        a.get("kind") == "rollback" and a.get("status") == "done" for a in payload.get("actions") or []
    )


def action_line(a: Mapping[str, Any]) -> str:
    status = str(a.get("status") or "?")
    emoji = _ACTION_STATUS_EMOJI.get(status, ":grey_question:")
    kind = str(a.get("kind") or "action").replace("_", " ").capitalize()
    line = f"{emoji} {kind}"
    if a.get("from_version") is not None or a.get("to_version") is not None:
        line += f" v{escape(a.get('from_version'))} → v{escape(a.get('to_version'))}"
    line += f": *{escape(status.replace('_', ' '))}*"
    if a.get("actor"):
        line += f" by {escape(a['actor'])}"
    if a.get("at") is not None:
        line += f" at {fmt_time(a.get('at'))}"
    if a.get("reason"):
        line += f" — {escape(clip(str(a['reason']), MAX_MESSAGE_CHARS))}"
    if a.get("detail"):
        line += f" ({escape(clip(str(a['detail']), MAX_MESSAGE_CHARS))})"
    return "• " + line


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


def _buttons(payload: Mapping[str, Any], model: str, incident_id: Any) -> dict[str, Any] | None:
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
    return {"type": "actions", "block_id": "vigil_incident_actions", "elements": elements}


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
    model = str(_require(payload, "model"))
    incident_id = _require(payload, "incident_id")
    severity = str(payload.get("severity") or "warning")
    resolved = payload.get("status") == "resolved"
    findings = [f for f in payload.get("findings") or [] if isinstance(f, Mapping)]
    causes = [c for c in payload.get("causes") or [] if isinstance(c, Mapping)]
    title = str(payload.get("title") or f"{model}: {len(findings)} finding{'s' if len(findings) != 1 else ''}")
    emoji = _RESOLVED_EMOJI if resolved else _SEVERITY_EMOJI.get(severity, ":warning:")
    prefix = "Resolved: " if resolved else ""

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"{emoji} {prefix}{title}", MAX_HEADER_TEXT)}
    ]
    meta = [f"*{escape(model)}*", f"incident #{escape(incident_id)}", severity.upper()]
    if payload.get("opened_at") is not None:
        meta.append(f"opened {fmt_time(payload['opened_at'])}")
    if resolved and payload.get("resolved_at") is not None:
        after = ""
        if payload.get("opened_at") is not None:
            after = f" after {fmt_duration(float(payload['resolved_at']) - float(payload['opened_at']))}"
        meta.append(f"*resolved* {fmt_time(payload['resolved_at'])}{after}")
    elif payload.get("updated_at") is not None:
        meta.append(f"updated {fmt_time(payload['updated_at'])}")
    if payload.get("acknowledged_by"):
        meta.append(f"acknowledged by {escape(payload['acknowledged_by'])}")
    blocks.append(_context(" · ".join(meta)))
    if payload.get("cold_start"):
        blocks.append(
            _context(
                ":seedling: Cold start: this model was deployed less than 7 days ago, so drift is "
                "measured against the training reference and does not page."
            )
        )

    ranked = sorted(findings, key=lambda f: -(f.get("score") or 0.0))
    shown = ranked[:MAX_FINDINGS_SHOWN]
    blocks += _packed_sections(
        "*What is wrong*" if not resolved else "*What was wrong*",
        [finding_line(f) for f in shown] or ["_no findings recorded_"],
        len(ranked) - len(shown),
        "findings",
    )

    if causes:
        blocks.append({"type": "divider"})
        blocks += _packed_sections(
            "*Likely causes, most likely first*",
            [cause_text(i + 1, c) for i, c in enumerate(causes[:MAX_CAUSES_SHOWN])],
            len(causes) - MAX_CAUSES_SHOWN,
            "causes",
        )

    if payload.get("suggested_action") and not resolved:
        blocks.append(_section(f"*Suggested action*\n{escape(payload['suggested_action'])}"))

    actions = [a for a in payload.get("actions") or [] if isinstance(a, Mapping)]
    if actions:
        blocks += _packed_sections("*What Vigil did*", [action_line(a) for a in actions], 0, "actions")

    links = payload.get("links") or {}
    link_parts = []
    if links.get("grafana"):
        link_parts.append(f"<{links['grafana']}|:bar_chart: Grafana panel>")
    if links.get("drift_report"):
        link_parts.append(f"<{links['drift_report']}|:page_facing_up: Drift report>")
    if link_parts:
        blocks.append(_context(*link_parts))

    tail = 0
    if not resolved:
        blocks.append(_buttons(payload, model, incident_id))
        tail = 1
    blocks = _fit_blocks(blocks, keep_tail=tail)

    text = f"{emoji} [{severity.upper()}] {prefix}{title}"
    if causes:
        c0 = causes[0]
        text += f" — top cause: {c0.get('entity') or c0.get('kind')} ({fmt_pct_score(c0.get('score'))})"
    if payload.get("suggested_action") and not resolved:
        text += f" — {payload['suggested_action']}"
    return clip(text, MAX_FALLBACK_TEXT), blocks


def render_rollback(payload: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A rollback notice, posted in the incident's thread.

    Payload: model, from_version, to_version, status ("done", "dry_run", "refused",
    "failed"), optional incident_id, at, reason, detail, actor.
    """
    model = str(_require(payload, "model"))
    a = {k: v for k, v in payload.items() if k != "actor"}  # the actor is named once, in the first line
    a.setdefault("kind", "rollback")
    status = str(payload.get("status") or "?")
    who = f" by {escape(payload['actor'])}" if payload.get("actor") else ""
    incident = f" (incident #{escape(payload['incident_id'])})" if payload.get("incident_id") is not None else ""
    line = action_line(a).removeprefix("• ")
    blocks = [_section(f"*{escape(model)}*{incident}{who}\n{line}")]
    text = (
        f"Rollback of {model} v{payload.get('from_version')} → v{payload.get('to_version')}: "
        f"{status.replace('_', ' ')}"
    )
    if payload.get("reason"):
        text += f" — {payload['reason']}"
    return clip(text, MAX_FALLBACK_TEXT), blocks
