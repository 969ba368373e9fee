"""Where each KPI's and SLO's online anomaly state is kept in the model's detector state.

A state is keyed by the signal's name, the series' labels and its queries: it learnt what
its query returned (a CTR in percent, a volume per second), so a changed query is a new
series, learnt from a day of history as at first sight (gather reads it for a key it
does not know). A store from before the key named its queries is read under the legacy
key once, dropped only once the new one is in hand (a cycle that fails keeps it). The
states of queries no signal has any more are dropped after each cycle's detection.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from detectors.anomaly import AnomalyState
from detectors.records import Series


def anomaly_key(name: str, series: Series, query: str, volume_query: str | None = None) -> str:
    """The key a series' online anomaly state is stored under; in the queries a run of
    whitespace counts as one space."""
    return legacy_anomaly_key(name, series) + _queries_tail(query, volume_query)


def legacy_anomaly_key(name: str, series: Series) -> str:
    """The key of a store from before the key named its queries: resumed, once, as is."""
    return f"{name}|{series.label_str()}"


def _queries_tail(query: str, volume_query: str | None) -> str:
    tail = f"|query {_fingerprint(query)}"
    return tail if volume_query is None else f"{tail}|volume {_fingerprint(volume_query)}"


def _fingerprint(query: str) -> str:
    return hashlib.sha256(" ".join(query.split()).encode()).hexdigest()[:12]


def stored_anomaly_state(state: Mapping[str, Any], key: str, legacy: str) -> Any:
    """The state stored under `key`, else one a store from before kept under the legacy key."""
    return state[key] if key in state else state.get(legacy)


def store_anomaly_state(state: dict[str, Any], key: str, legacy: str, value: dict[str, Any]) -> None:
    """Store `value` under `key`; a legacy state it took over goes (its row is deleted).
    Only once the new state is in hand: a cycle that fails before keeps it."""
    state[key] = value
    state.pop(legacy, None)


def drop_unconfigured_states(state: dict[str, Any], signals: Iterable[tuple[str, str, str | None]]) -> list[str]:
    """Drop the anomaly states no KPI or SLO of the model (`signals`: name, query, volume
    query) has any more: a signal taken out of the config, or a query changed (a signal
    added back is learnt afresh from a day of history). A legacy key of a configured name
    stays until a cycle takes it over; "@" keys are the log and trace baselines. The keys
    dropped."""
    tails: dict[str, set[str]] = {}
    for name, query, volume_query in signals:
        tails.setdefault(name, set()).add(_queries_tail(query, volume_query))

    def kept(key: str) -> bool:
        if key.startswith("@"):
            return True
        name = next((n for n in tails if key.startswith(f"{n}|")), None)
        if name is None:
            return False
        return "|query " not in key or any(key.endswith(t) for t in tails[name])

    dropped = [k for k in state if not kept(k)]
    for key in dropped:
        del state[key]
    return dropped


def usable_state(state: dict[str, Any] | None) -> bool:
    """A stored anomaly state this detector version can resume from."""
    if state is None:
        return False
    try:
        AnomalyState.from_dict(state)
    except (KeyError, TypeError, ValueError):
        return False  # an older state format: start afresh rather than fail every cycle
    return True
