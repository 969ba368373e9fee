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
import math
from collections.abc import Mapping
from typing import Any

from alerts import evidence_words, wording
from alerts.rollback import ActionStatus
from alerts.wording import Wording
from detectors.records import PARTIAL_WORDS, partial_read

DEFAULT_WORDING = Wording()

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

ACTIONS_BLOCK = "vigil_incident_actions"  # block id of the buttons; "<it>:<from>:<to>" with Roll back
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
    "retrying": ":hourglass_flowing_sand:",  # a rollback's first failed attempt (monitor/cycle/rollback_told.py)
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


def fmt_number(value: Any) -> str:
    """Three significant digits, thousands separated: 0.312, 12.3, 12,300, 1.23e-05."""
    return escape(wording.number(value))


def fmt_seconds(value: Any) -> str:
    """A latency or duration in the unit a person reads it in: 250 ms, 1.5 s, 12 min."""
    return wording.seconds(value)


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
    return escape(wording.stat_value(value, statistic))


def fmt_time(ts: Any, w: Wording = DEFAULT_WORDING) -> str:
    """A time in the configured zone ('2026-11-20 10:00 CET'), the same in every receiver."""
    return wording.clock(ts, w.time_zone)


def fmt_pct_score(score: Any) -> str:
    try:
        return f"{round(float(score) * 100)}%"
    except (TypeError, ValueError):
        return "n/a"


def fmt_evidence(evidence: Mapping[str, Any] | None, w: Wording = DEFAULT_WORDING) -> str:
    """'version: 2 · deployed at: 2026-11-20 09:00 UTC': words, never JSON or epoch floats."""
    if not evidence:
        return ""
    items = [(k, v) for k, v in evidence.items() if v is not None and v != "" and v != [] and v != {}]
    shown = [f"{escape(evidence_words.key_words(str(k)))}: "
             f"{_clip_list(k, v, w)}" for k, v in items[:MAX_EVIDENCE_ITEMS]]
    more = f" · +{len(items) - MAX_EVIDENCE_ITEMS} more" if len(items) > MAX_EVIDENCE_ITEMS else ""
    return " · ".join(shown) + more


def _clip_list(key: str, value: Any, w: Wording) -> str:
    """Long lists are counted ("+2 more"); every value is clipped to what a reader takes in."""
    if isinstance(value, (list, tuple)) and len(value) > 3:
        shown = evidence_words.evidence_value(key, list(value[:3]), w)
        return escape(clip(shown, MAX_EVIDENCE_VALUE)) + f" +{len(value) - 3} more"
    if isinstance(value, Mapping) and "statistic" not in value:
        # A record of records (a GPU signal per device): one clause each, "; " between them.
        parts = [f"{evidence_words.key_words(str(k))}: {evidence_words.evidence_value(str(k), v, w)}"
                 for k, v in value.items()]
        return escape(clip("; ".join(parts), MAX_EVIDENCE_VALUE * 3))
    return escape(clip(evidence_words.evidence_value(key, value, w), MAX_EVIDENCE_VALUE))


# --------------------------------------------------------------------------- pieces
def require_field(payload: Mapping[str, Any], field: str) -> Any:
    if field not in payload or payload[field] is None:
        raise ValueError(f"payload.{field}: required for a Slack message, missing")
    return payload[field]


_WORDS_SAY_IT_ALL = {"kpi_drop", "metric_anomaly", "slo_breach", "feature_drift", "prediction_drift",
                     "gpu_saturation"}


def finding_line(f: Mapping[str, Any], w: Wording = DEFAULT_WORDING) -> str:
    """'• *ctr* fell 7.3 % to 0.0463, from 0.0499 in the hour before (alerts at -5 %) · last 30 min'."""
    entity, sentence = wording.finding_sentence(f, w)
    line = f"*{escape(entity)}* {escape(sentence)}"
    ws, we = f.get("window_start"), f.get("window_end")
    if ws is not None and we is not None:
        with contextlib.suppress(TypeError, ValueError):  # a malformed window loses its length only
            line += f" · last {wording.duration(float(we) - float(ws))}"
    if f.get("service") and f.get("service") != f.get("entity"):
        line += f" · service {escape(f['service'])}"
    # The detector's own sentence adds what the plain words do not say (a log template, a range).
    if f.get("message") and str(f.get("kind")) not in _WORDS_SAY_IT_ALL:
        line += f"\n      _{escape(clip(str(f['message']), MAX_MESSAGE_CHARS))}_"
    if partial := partial_read(f):  # its number may be a store's missing share, not the model's
        line += f"\n      :warning: _{PARTIAL_WORDS}: {escape(clip(partial, MAX_MESSAGE_CHARS))}_"
    return "• " + line


def cause_text(rank: int, c: Mapping[str, Any], w: Wording = DEFAULT_WORDING) -> str:
    kind = str(c.get("kind") or "unknown").replace("_", " ")
    head = f"*{rank}. {escape(c.get('entity') or kind)}* — {fmt_pct_score(c.get('score'))} confidence ({kind})"
    lines = [head]
    if c.get("explanation"):
        lines.append(escape(clip(str(c["explanation"]), MAX_EXPLANATION_CHARS)))
    deploy = c.get("deploy")
    if isinstance(deploy, Mapping) and deploy.get("version") is not None:
        was = f" (was v{escape(deploy['previous_version'])})" if deploy.get("previous_version") else ""
        alias = escape(deploy.get("alias") or "alias")
        lines.append(f"Deploy: {alias} → v{escape(deploy['version'])}{was} at {fmt_time(deploy.get('at'), w)}")
    ev = fmt_evidence(c.get("evidence"), w)
    if ev:
        lines.append(f"_Evidence:_ {ev}")
    return "\n".join(lines)


def rollback_target(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(current version, version to go back to) from the best-ranked deploy cause, unless a
    person's move has replaced that deploy since (its rollback would take their release out)."""
    for c in payload.get("causes") or []:
        deploy = c.get("deploy") if isinstance(c, Mapping) else None
        if str(c.get("kind")) == "deploy" and (c.get("evidence") or {}).get("replaced_by") is not None:
            return None
        if str(c.get("kind")) == "deploy" and isinstance(deploy, Mapping) and deploy.get("previous_version"):
            return str(deploy.get("version")), str(deploy["previous_version"])
    return None


def rollback_done(payload: Mapping[str, Any]) -> bool:
    return any(
        a.get("kind") == "rollback" and a.get("status") == ActionStatus.DONE for a in payload.get("actions") or []
    )


def action_line(a: Mapping[str, Any], w: Wording = DEFAULT_WORDING) -> str:
    status = str(a.get("status") or "?")
    emoji = _ACTION_STATUS_EMOJI.get(status, ":grey_question:")
    kind = str(a.get("kind") or "action").replace("_", " ").capitalize()
    line = f"{emoji} {kind}"
    if a.get("from_version") is not None or a.get("to_version") is not None:
        # from unknown (a refusal while the registry could not be read): "→ v1", not "vNone → v1"
        came = f"v{escape(a.get('from_version'))} " if a.get("from_version") is not None else ""
        line += f" {came}→ v{escape(a.get('to_version'))}"
    line += f": *{escape(status.replace('_', ' '))}*"
    if a.get("actor"):
        line += f" by {escape(a['actor'])}"
    if a.get("at") is not None:
        line += f" at {fmt_time(a.get('at'), w)}"
    if a.get("reason"):
        line += f" — {escape(clip(str(a['reason']), MAX_MESSAGE_CHARS))}"
    if a.get("detail"):
        line += f" ({escape(clip(str(a['detail']), MAX_MESSAGE_CHARS))})"
    return "• " + line
