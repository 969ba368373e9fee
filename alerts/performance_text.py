"""A performance drop as Slack shows it: the metric, realised and estimated side by side,
the reference and the limit, and how much of it rests on labels (count, coverage, delay).

    • *accuracy* realised *0.712* vs reference 0.861: *-17.3%* (limit -10%) · estimated (CBPE) 0.80
      812 labels · coverage 81% · median label delay 2.0 h · version 3 · window <time> for 1 h
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.slack_text import escape, fmt_duration, fmt_number, fmt_seconds, fmt_time

KIND = "performance_drop"


def is_performance(f: Mapping[str, Any]) -> bool:
    return str(f.get("kind")) == KIND


def _other(evidence: Mapping[str, Any], basis: str, metric: str) -> Any:
    """The figure of the other basis for the same metric (estimated beside realised, or back)."""
    figures = evidence.get("estimated" if basis == "realised" else "realised") or {}
    return figures.get(metric) if isinstance(figures, Mapping) else None


def performance_line(f: Mapping[str, Any]) -> str:
    e: Mapping[str, Any] = f.get("evidence") or {}
    basis, metric = str(e.get("basis") or "realised"), str(e.get("metric") or f.get("entity") or "?")
    head = (f"• *{escape(metric)}* {escape(basis)} *{fmt_number(e.get('value'))}* vs reference "
            f"{fmt_number(e.get('reference', f.get('baseline')))}: *{fmt_number(f.get('value'))}%* "
            f"(limit {fmt_number(f.get('threshold'))}%)")
    other = _other(e, basis, metric)
    if other is not None:
        head += f" · {'estimated (CBPE)' if basis == 'realised' else 'realised'} {fmt_number(other)}"
    if basis == "realised":
        coverage = e.get("coverage")
        delay = e.get("delay_median_s")
        detail = (f"{e.get('labelled', '?')} labels · coverage "
                  f"{'n/a' if coverage is None else f'{round(float(coverage) * 100)}%'} · median label delay "
                  f"{'n/a' if delay is None else fmt_seconds(delay)}")
    else:
        detail = f"estimate from {e.get('predictions', '?')} predictions, labels not in yet"
    ws, we = f.get("window_start"), f.get("window_end")
    window = ""
    if isinstance(ws, (int, float)) and isinstance(we, (int, float)):
        window = f" · window {fmt_time(ws)} for {fmt_duration(we - ws)}"
    return f"{head}\n      {detail} · version {escape(e.get('version', '?'))}{window}"
