"""The labels an alert carries, the vocabulary of silences, inhibition rules and grouping.

An incident of one model:
    alertname="ModelIncident", model, severity, kind (every finding kind), kinds (them
    all, sorted and joined by ","), entity (every finding's entity), cause_kind and cause
    (the top cause; for an incident that is only no-data: "source_unavailable" and the
    source), source (the sources its no-data findings could not reach), and the
    model's own `labels` from vigil.yaml (team, tier, ...).
A shared cause (several models' incidents with one top cause):
    alertname="SharedCause", cause_kind, cause, model (every member), severity (the worst).
A source Vigil cannot reach:
    alertname="SourceDown", source, severity="warning".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from alerts.matchers import LabelValue

MODEL_INCIDENT = "ModelIncident"
SHARED_CAUSE = "SharedCause"
SOURCE_DOWN = "SourceDown"
SOURCE_UNAVAILABLE = "source_unavailable"  # the cause of an incident that is only no-data from a source


def incident_labels(model: str, severity: str | None, findings: Iterable[Mapping[str, Any]],
                    causes: Iterable[Mapping[str, Any]], extra: Mapping[str, str] | None = None
                    ) -> dict[str, LabelValue]:
    """From an incident as stored (findings and causes as dicts, best cause first)."""
    fs = list(findings)
    kinds = sorted({str(f.get("kind", "")) for f in fs})
    top = next(iter(causes), None)
    sources = sorted({str((f.get("evidence") or {}).get("source")) for f in fs
                      if f.get("kind") == "no_data" and (f.get("evidence") or {}).get("source")})
    cause_kind, cause = (str(top.get("kind", "")), str(top.get("entity", ""))) if top else ("", "")
    if kinds == ["no_data"] and sources:
        # Blind and nothing else: the cause is the source Vigil cannot reach, shared by every
        # model that reads it, so their incidents group into one page for the outage.
        cause_kind, cause = SOURCE_UNAVAILABLE, ",".join(sources)
    labels: dict[str, LabelValue] = dict(extra or {})
    labels.update({
        "alertname": MODEL_INCIDENT, "model": model, "severity": severity or "",
        "kind": tuple(kinds), "kinds": ",".join(kinds),
        "entity": tuple(sorted({str(f.get("entity", "")) for f in fs})),
        "cause_kind": cause_kind, "cause": cause, "source": tuple(sources),
    })
    return labels


def source_down_labels(source: str) -> dict[str, LabelValue]:
    return {"alertname": SOURCE_DOWN, "source": source, "severity": "warning"}


def shared_cause_labels(cause_kind: str, cause: str, models: Iterable[str], severity: str) -> dict[str, LabelValue]:
    return {"alertname": SHARED_CAUSE, "cause_kind": cause_kind, "cause": cause,
            "model": tuple(sorted(set(models))), "severity": severity}
