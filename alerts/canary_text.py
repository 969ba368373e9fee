"""The canary verdict table as Slack mrkdwn lines: one line per metric with the
challenger's value next to the champion's, the effect next to its threshold, the U test's
p-value next to alpha and the points each side had. Pure: payload fields in, strings out.

The table travels in the evidence of a `canary_fail` finding (monitor/cycle/canary.py),
so the incident message shows it wherever the incident is shown.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from alerts.slack_text import MAX_MESSAGE_CHARS, clip, escape, fmt_number
from detectors.numbers import nonfinite_text

VERDICT_EMOJI = {"fail": ":x:", "marginal": ":warning:", "inconclusive": ":grey_question:",
                 "pass": ":white_check_mark:"}
_ORDER = {"fail": 0, "marginal": 1, "inconclusive": 2, "pass": 3}


def canary_table(findings: list[Mapping[str, Any]]) -> tuple[str, list[str]] | None:
    """(title, lines) of the newest canary table among the findings; None when there is none."""
    tables = [f for f in findings if f.get("kind") == "canary_fail" and (f.get("evidence") or {}).get("verdict_table")]
    if not tables:
        return None
    newest = max(tables, key=lambda f: f.get("window_end") or 0.0)
    ev = newest["evidence"]
    rows = sorted((r for r in ev["verdict_table"] if isinstance(r, Mapping)),
                  key=lambda r: (_ORDER.get(str(r.get("verdict")), 9), str(r.get("metric"))))
    title = (f"*Canary: challenger v{escape(ev.get('challenger_version'))} vs champion "
             f"v{escape(ev.get('champion_version'))}*")
    return title, [verdict_line(r) for r in rows]


def verdict_line(r: Mapping[str, Any]) -> str:
    """'❌ *latency*: fail — challenger 0.32 vs champion 0.2 · effect +60.0% (fail at +10.0%) ·
    p=1e-09 vs alpha 0.005 · n 61/61 (min 10)', then the verdict's reason."""
    verdict = str(r.get("verdict") or "?")
    parts = [f"{VERDICT_EMOJI.get(verdict, ':grey_question:')} *{escape(r.get('metric'))}*: {verdict}"]
    numbers = []
    if r.get("challenger") is not None or r.get("champion") is not None:
        numbers.append(f"challenger {fmt_number(r.get('challenger'))} vs champion {fmt_number(r.get('champion'))}")
    if r.get("effect") is not None or r.get("kind") == "distribution":
        numbers.append(f"effect {_effect(r.get('effect'), r.get('kind'))} (fail at "
                       f"{_effect(r.get('fail_effect'), r.get('kind'))})")
    if r.get("p_value") is not None:
        numbers.append(f"p={float(r['p_value']):.2g} vs alpha {fmt_number(r.get('alpha'))}")
    if r.get("fail_above") is not None:
        numbers.append(f"absolute limit: above {fmt_number(r['fail_above'])} fails")
    if r.get("fail_below") is not None:
        numbers.append(f"absolute limit: below {fmt_number(r['fail_below'])} fails")
    numbers.append(f"n {r.get('n_challenger', 0)}/{r.get('n_champion', 0)} (min {r.get('min_points', 0)})")
    line = parts[0] + " — " + " · ".join(numbers)
    if r.get("reason"):
        line += f"\n      _{escape(clip(str(r['reason']), MAX_MESSAGE_CHARS))}_"
    return "• " + line


def _effect(value: Any, kind: Any) -> str:
    if value is None:
        return "n/a"
    v = float(value)
    if kind == "distribution":
        return fmt_number(v)
    if not math.isfinite(v):  # as Prometheus writes it: "+Inf", "NaN"
        return nonfinite_text(v) or "n/a"
    return f"{100 * v:+.1f}%"
