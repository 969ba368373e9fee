"""Slack text: values, times, findings, causes and actions as mrkdwn lines, clipped to
Block Kit's limits. Pure: payload fields in, strings out (slack_blocks.py lays them out).

The message answers, in this order: what is wrong (each value next to its threshold,
baseline and window), the ranked causes with their evidence, what to do, what Vigil
already did, where to look. Slack rejects a whole message for one oversized field
(`invalid_blocks`), so every limit from contracts/README.md section 6 is enforced
here by clipping with "…" and "+N more", never by hoping.
"""
from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from alerts.rollback import ActionStatus

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

SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}
RESOLVED_EMOJI = ":white_check_mark:"
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
    fallback = datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
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
def require_field(payload: Mapping[str, Any], field: str) -> Any:
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
        with contextlib.suppress(TypeError, ValueError):  # a malformed window loses its length only
            line += f" over {fmt_duration(float(we) - float(ws))}"
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
        a.get("kind") == "rollback" and a.get("status") == ActionStatus.DONE for a in payload.get("actions") or []
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
