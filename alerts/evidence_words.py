"""Evidence values in plain words: times in the zone, shares as percentages, nested records as
'mean 96.3 %, limit 95 %, from … until …' rather than JSON (alerts/wording.py words the findings)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.statistic_words import STATISTIC_WORDS, stat_words
from alerts.wording import SHARES, Wording, clock, is_time_key, number, stat_value

_LEAD = ("mean", "value", "peak", "limit", "threshold", "from", "until")


def key_words(key: str) -> str:
    """'previous_version' -> 'previous version'; a GPU signal key 'node/gpu 0:fb_used_ratio' -> words."""
    if ":" in key:
        where, _, stat = key.rpartition(":")
        return f"{stat_words(stat)} on {where}"
    return stat_words(key) if key in STATISTIC_WORDS else key.replace("_", " ")


def _stat_record(r: Mapping[str, Any]) -> str:
    """{'feature': 'x', 'statistic': 'psi', 'value': .117, 'threshold': .1} -> 'x: PSI 0.117 (threshold 0.1)'."""
    stat = str(r.get("statistic"))
    head = f"{r['feature']}: " if r.get("feature") else ""
    text = f"{head}{stat_words(stat)} {stat_value(r.get('value'), stat)}"
    if r.get("threshold") is not None:
        text += f" (threshold {stat_value(r.get('threshold'), stat)})"
    return text


def evidence_value(key: str, value: Any, w: Wording, *, depth: int = 0) -> str:
    """One evidence value in words: times in the zone, shares as percentages, nested records as
    'mean 96.3 %, limit 95 %, from … until …' rather than JSON."""
    if is_time_key(key):
        return clock(value, w.time_zone)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return stat_value(value, key) if key in SHARES else number(value)
    if isinstance(value, Mapping) and "statistic" in value and "value" in value:
        return _stat_record(value)
    if isinstance(value, Mapping):
        if depth >= 2:
            return f"{len(value)} values"
        stat = key.rpartition(":")[2]
        parts = []
        # The value and its limit first, then the when: "mean 96.3 %, limit 95 %, from …, until …".
        items = sorted(value.items(), key=lambda kv: (_LEAD.index(kv[0]) if kv[0] in _LEAD else len(_LEAD)))
        for k, v in items:
            if v is None or v == "" or v == [] or v == {}:
                continue
            inner = stat_value(v, stat) if k in ("mean", "limit", "peak", "value", "threshold") and stat else \
                evidence_value(str(k), v, w, depth=depth + 1)
            parts.append(f"{key_words(str(k))} {inner}")
        return ", ".join(parts)
    if isinstance(value, (list, tuple)):
        return ", ".join(evidence_value(key, v, w, depth=depth + 1) for v in value)
    return str(value)
