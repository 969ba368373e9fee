"""Where each KPI's and SLO's online anomaly state is kept in the model's detector state.

A state is keyed by the signal's name, the series' labels and its queries: it learnt what
its query returned (a CTR in percent, a volume per second), so a changed query is a new
series, learnt from a day of history as at first sight (gather reads it for a key it
does not know). A store from before the key named its queries is read under the legacy
key once. What a state replaces is dropped only once the new one is in hand, so a cycle
that fails keeps the old.
"""
from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

from detectors.anomaly import AnomalyState
from detectors.records import Series


def anomaly_key(name: str, series: Series, query: str, volume_query: str | None = None) -> str:
    """The key a series' online anomaly state is stored under; in the queries a run of
    whitespace counts as one space."""
    key = f"{legacy_anomaly_key(name, series)}|query {_fingerprint(query)}"
    return key if volume_query is None else f"{key}|volume {_fingerprint(volume_query)}"


def legacy_anomaly_key(name: str, series: Series) -> str:
    """The key of a store from before the key named its queries: resumed, once, as is."""
    return f"{name}|{series.label_str()}"


def _fingerprint(query: str) -> str:
    return hashlib.sha256(" ".join(query.split()).encode()).hexdigest()[:12]


def stored_anomaly_state(state: Mapping[str, Any], key: str, legacy: str) -> Any:
    """The state stored under `key`, else one a store from before kept under the legacy key."""
    return state[key] if key in state else state.get(legacy)


def replace_anomaly_state(state: dict[str, Any], key: str, legacy: str, value: dict[str, Any],
                          live: Collection[str]) -> list[str]:
    """Store `value` under `key` and drop what it replaces: the legacy key's state it took
    over, and the series' states under queries no signal of its name has now (`live`: the
    keys of those that do); the store deletes their rows. Only once the new state is in
    hand: a cycle that fails before keeps them. The keys dropped."""
    state[key] = value
    dropped = [k for k in state if k == legacy or (k.startswith(f"{legacy}|query ") and k not in live)]
    for old in dropped:
        del state[old]
    return dropped


def drop_unconfigured_states(state: dict[str, Any], names: Collection[str]) -> None:
    """Drop the anomaly states of KPIs and SLOs the model no longer has (a signal added
    back is learnt afresh from a day of history); "@" keys are the log and trace baselines."""
    prefixes = tuple(f"{n}|" for n in names)
    for key in [k for k in state if not k.startswith("@") and not k.startswith(prefixes)]:
        del state[key]


def usable_state(state: dict[str, Any] | None) -> bool:
    """A stored anomaly state this detector version can resume from."""
    if state is None:
        return False
    try:
        AnomalyState.from_dict(state)
    except (KeyError, TypeError, ValueError):
        return False  # an older state format: start afresh rather than fail every cycle
    return True
