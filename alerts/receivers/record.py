"""The record a receiver is sent: one incident's state at one change, stored in the outbox.

It is built once, in the transaction that changed the incident, so every delivery of it
(retries, another replica, after a restart) sends the same thing. `dedup_key` names the
incident for every receiver (PagerDuty's dedup_key, Opsgenie's alias, the webhook's
idempotency key prefix, Alertmanager's `vigil_incident` label): it depends only on the
configured prefix and the incident's id in the store, which replicas share.
"""
from __future__ import annotations

from typing import Any

from alerts.lifecycle import IncidentStatus
from alerts.payload import IncidentSnapshot
from detectors.records import json_safe

MAX_FINDINGS = 10  # the strongest; a pager shows a summary, the links hold the rest
_FINDING_KEYS = ("kind", "entity", "value", "threshold", "baseline", "statistic", "direction", "score", "message")


def dedup_key(prefix: str, incident_id: int) -> str:
    return f"{prefix}-incident-{incident_id}"


def state_of(record: dict[str, Any]) -> str:
    """`resolved`, `acknowledged` or `triggered`: what the receiver's side should show."""
    if record["status"] == IncidentStatus.RESOLVED:
        return "resolved"
    return "acknowledged" if record.get("acknowledged_by") else "triggered"


def receiver_record(snap: IncidentSnapshot, *, prefix: str, updated_at: float,
                    links: dict[str, str | None]) -> dict[str, Any]:
    findings = sorted(snap.findings, key=lambda f: -(f.get("score") or 0.0))[:MAX_FINDINGS]
    top = snap.causes[0] if snap.causes else None
    return json_safe({
        "dedup_key": dedup_key(prefix, snap.incident_id),
        "incident_id": snap.incident_id,
        "model": snap.model,
        "severity": snap.severity,
        "status": snap.status,
        "title": snap.title,
        "opened_at": snap.opened_at,
        "updated_at": updated_at,
        "resolved_at": snap.resolved_at,
        "acknowledged_by": snap.acknowledged_by,
        "top_cause": ({k: top.get(k) for k in ("kind", "entity", "score", "explanation")} if top else None),
        "findings": [{k: f.get(k) for k in _FINDING_KEYS} for f in findings],
        "finding_count": len(snap.findings),
        "links": {k: v for k, v in links.items() if v},
    })
