"""What a diagnosis had to go on: which modalities had data for each service, and
what it lacked (a modality absent everywhere, a missing or short normal period). These are
the `observed` and `lacking` inputs of `correlators.rca.rank_root_causes`."""
from __future__ import annotations

import math
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


# A log or trace reference covering less than this share of the window it is compared
# with is reported as short: a line or call it never saw is then weak evidence of
# anything new (a reference nearly as long as the window is the usual case, not a lack).
SHORT_REFERENCE_SHARE = 0.5


def reference_lacking(modality: str, reference: int, reference_seconds: float, window: int,
                      window_seconds: float) -> list[str]:
    """What a log or trace baseline lacked for a window with `window` records: any
    record at all, or the length to judge the window by (`SHORT_REFERENCE_SHARE`)."""
    if not window:
        return []
    if not reference:
        return [f"no {modality} in the normal period"]
    if reference_seconds < SHORT_REFERENCE_SHARE * window_seconds:
        return [f"short normal period for {modality}: {reference_seconds:.0f} s for a {window_seconds:.0f} s window"]
    return []


def what_lacked(window: Mapping[str, int], normal: Mapping[str, int], *, short_normal: Sequence[str] = (),
                modalities: Sequence[str] = MODALITIES, seconds: Mapping[str, tuple[float, float]] | None = None
                ) -> list[str]:
    """What a diagnosis lacked, from record counts per modality ("metrics", "logs",
    "traces") in the window and in the normal period, and notes on short baselines.
    `modalities`: those the counts speak for (the daemon counts its metric series here).
    `seconds`: per modality, (normal period, window) lengths, to report a short reference."""
    out = [f"no {m} at all" for m in modalities if not window.get(m) and not normal.get(m)]
    out += [f"no {m} in the window" for m in modalities if not window.get(m) and normal.get(m)]
    for m in modalities:
        ref_s, win_s = (seconds or {}).get(m, (math.inf, 0.0))
        out += reference_lacking(m, normal.get(m, 0), ref_s, window.get(m, 0), win_s)
    return out + list(short_normal)
