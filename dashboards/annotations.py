"""Deploys, incidents and rollbacks as Grafana annotations: the bodies and the calls.

Annotations are org-wide (no dashboard uid) and tagged ["vigil", kind, model, ...,
key tag]; the generated dashboards pick them up by tag. An incident is one region
annotation: created when it opens (time = opened_at) and patched with timeEnd when
it resolves.

Delivery is at least once (the outbox adapter in monitor/grafana/annotations.py
retries), so `upsert_annotation` first looks for an annotation already carrying the
event key's tag when a create is retried: a lost response leaves no duplicate behind.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .grafana_api import GrafanaClient, GrafanaRequestError


class AnnotationKind(StrEnum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    INCIDENT = "incident"


@dataclass(frozen=True)
class AnnotationEvent:
    """One deploy, rollback or incident to mark on Grafana's time axis.

    `key` names the event ("incident:42"): every delivery for it updates one annotation.
    `payload` holds epoch seconds (`at`, `opened_at`, `resolved_at`) and the fields
    the text is written from.
    """

    kind: AnnotationKind
    key: str
    payload: Mapping[str, Any]


class PayloadError(ValueError):
    """The event lacks a field the annotation needs."""


def _ms(payload: Mapping[str, Any], key: str, kind: str) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{kind} payload field {key!r}: expected epoch seconds (number), got {value!r}")
    return int(round(float(value) * 1000))


def _str(payload: Mapping[str, Any], key: str, kind: str) -> str:
    value = payload.get(key)
    if value is None or value == "":
        raise PayloadError(f"{kind} payload field {key!r} is missing")
    return str(value)


KEY_TAG_PREFIX = "vigil-key/"
MAX_TAG_CHARS = 100  # Grafana's tag table: key and value are varchar(100)


def key_tag(event: AnnotationEvent) -> str:
    """A tag unique to the event key ("incident:42" -> "vigil-key/incident/42"), used to find
    our own annotation again.

    No colon: Grafana reads "a:b" as the key "a" with the value "b" (and drops what follows a
    second colon), and a query tag without a value matches every tag of that key, counted
    once each. "incident:42" thus also matched the dashboards' query tag "incident", their
    count of matches came out one over the number of query tags, and no dashboard showed
    any annotation. Long keys are shortened with a hash to fit Grafana's tag column."""
    tag = KEY_TAG_PREFIX + event.key.replace(":", "/")
    if len(tag) <= MAX_TAG_CHARS:
        return tag
    digest = hashlib.sha256(event.key.encode()).hexdigest()[:16]
    return f"{tag[:MAX_TAG_CHARS - len(digest) - 1]}~{digest}"


def _deploy_body(event: AnnotationEvent) -> dict[str, Any]:
    p = event.payload
    model, version = _str(p, "model", "deploy"), _str(p, "version", "deploy")
    prev = p.get("previous_version")
    alias = p.get("alias") or "alias"
    text = f"Deploy: {model} {alias} -> v{version}" + (f" (was v{prev})" if prev not in (None, "") else "")
    return {"time": _ms(p, "at", "deploy"), "tags": ["vigil", "deploy", model, f"v{version}", key_tag(event)],
            "text": text}


def _rollback_body(event: AnnotationEvent) -> dict[str, Any]:
    p = event.payload
    model = _str(p, "model", "rollback")
    frm, to = _str(p, "from_version", "rollback"), _str(p, "to_version", "rollback")
    status = str(p.get("status") or "done")
    dry = " [dry run]" if p.get("dry_run") else ""
    actor = f" by {p['actor']}" if p.get("actor") else ""
    reason = f": {p['reason']}" if p.get("reason") else ""
    text = f"Rollback{dry} {model} v{frm} -> v{to} ({status}){actor}{reason}"
    return {"time": _ms(p, "at", "rollback"), "tags": ["vigil", "rollback", model, status, key_tag(event)],
            "text": text}


def _incident_body(event: AnnotationEvent) -> dict[str, Any]:
    p = event.payload
    model = _str(p, "model", "incident")
    severity = str(p.get("severity") or "unknown")
    title = p.get("title") or f"incident {p.get('incident_id', '')}".strip()
    summary = p.get("summary") or ""
    resolved = p.get("status") == "resolved"
    text = f"[{severity}] {title}" + (" (resolved)" if resolved else "") + (f"\n{summary}" if summary else "")
    body: dict[str, Any] = {"time": _ms(p, "opened_at", "incident"),
                            "tags": ["vigil", "incident", model, severity, key_tag(event)], "text": text}
    if resolved:
        body["timeEnd"] = _ms(p, "resolved_at", "incident")
    return body


_BODIES: dict[AnnotationKind, Callable[[AnnotationEvent], dict[str, Any]]] = {
    AnnotationKind.DEPLOY: _deploy_body,
    AnnotationKind.ROLLBACK: _rollback_body,
    AnnotationKind.INCIDENT: _incident_body,
}


def annotation_body(event: AnnotationEvent) -> dict[str, Any]:
    """The POST /api/annotations body for a deploy, rollback or incident.

    Raises PayloadError naming the field when the payload lacks one the annotation needs.
    """
    return _BODIES[AnnotationKind(event.kind)](event)


def upsert_annotation(client: GrafanaClient, event: AnnotationEvent, body: dict[str, Any], *,
                      known_id: int | str | None = None, retried: bool = False) -> int:
    """Create or update the event's annotation and return its id.

    `known_id` is the id an earlier delivery for this key returned (patched in place;
    created again if someone deleted it in Grafana). `retried` says an earlier attempt
    may have created it without us seeing the answer, so we look for it by its key tag
    before creating another.
    """
    if known_id is not None:
        try:
            client.patch_annotation(int(known_id), body)
            return int(known_id)
        except GrafanaRequestError as e:
            if e.status != 404:
                raise
            # Deleted by someone in Grafana: create it again below.
    elif retried:
        found = client.find_annotations(tags=["vigil", key_tag(event)], from_ms=body["time"] - 1,
                                        to_ms=body.get("timeEnd", body["time"]) + 1, limit=1)
        if found:
            client.patch_annotation(int(found[0]["id"]), body)
            return int(found[0]["id"])
    return client.create_annotation(body)
