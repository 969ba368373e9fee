"""What a diagnosis had to go on: which modalities had data for each service, and
what it lacked (a modality absent everywhere, a missing normal period). These are
the `observed` and `lacking` inputs of `correlators.rca.rank_root_causes`."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from detectors.records import LogRecord, Series, Span

MODALITIES = ("metrics", "logs", "traces")


def observed_modalities(metrics: Sequence[Series] = (), logs: Sequence[LogRecord] = (),
                        spans: Sequence[Span] = ()) -> dict[str, set[str]]:
    """Which modalities had data for each service in the window: the coverage input of
    `rank_root_causes` (a service seen only in metrics is ranked with less confidence)."""
    observed: dict[str, set[str]] = defaultdict(set)
    for s in metrics:
        if s.labels.get("service"):
            observed[s.labels["service"]].add("metrics")
    for r in logs:
        observed[r.service].add("logs")
    for sp in spans:
        observed[sp.service].add("traces")
    return observed


def lacking_from_observed(observed: Mapping[str, set[str]], modalities: Sequence[str] = ("logs", "traces")
                          ) -> list[str]:
    """What a diagnosis lacked: the `modalities` no service had data for in the window
    (the daemon's `observed` covers the logs and traces it read)."""
    have = set().union(*observed.values()) if observed else set()
    return [f"no {m} in the window" for m in modalities if m not in have]


def what_lacked(window: Mapping[str, int], normal: Mapping[str, int], *, short_normal: Sequence[str] = (),
                modalities: Sequence[str] = MODALITIES) -> list[str]:
    """What a diagnosis lacked, from record counts per modality ("metrics", "logs",
    "traces") in the window and in the normal period, and notes on short baselines.
    `modalities`: those the counts speak for (the daemon counts its metric series here)."""
    out = [f"no {m} at all" for m in modalities if not window.get(m) and not normal.get(m)]
    out += [f"no {m} in the window" for m in modalities if not window.get(m) and normal.get(m)]
    out += [f"no {m} in the normal period" for m in modalities if window.get(m) and not normal.get(m)]
    return out + list(short_normal)
