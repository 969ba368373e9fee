"""The record a receiver is sent: one incident's state at one change, stored in the outbox.

It is built once, in the transaction that changed the incident, so every delivery of it
(retries, another replica, after a restart) sends the same thing. `dedup_key` names the
incident for every receiver (PagerDuty's dedup_key, Opsgenie's alias, the webhook's
idempotency key prefix, Alertmanager's `vigil_incident` label): it depends only on the
configured prefix and the incident's id in the store, which replicas share.

A shared cause pages as one record of the same shape (`group_record`), keyed
`<prefix>-group-<group id>`, with `models`: each affected model, its severity, title and
evidence. While the group speaks for its members, their own incidents page no receiver.
"""
from __future__ import annotations

from typing import Any

from alerts.lifecycle import IncidentStatus
from alerts.payload import IncidentSnapshot
from detectors.records import json_safe, partial_read

MAX_FINDINGS = 10  # the strongest; a pager shows a summary, the links hold the rest
_FINDING_KEYS = ("kind", "entity", "value", "threshold", "baseline", "statistic", "direction", "score", "message")


def dedup_key(prefix: str, incident_id: int) -> str:
    return f"{prefix}-incident-{incident_id}"


def group_dedup_key(prefix: str, group_id: int) -> str:
    return f"{prefix}-group-{group_id}"


def as_sent(record: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any]:
    """`record` under the dedup key its incident was first sent with (kept in `ref`): a
    `dedup_prefix` changed while the incident is open must not move its later changes to a
    key the backend never saw (an ack or resolve there is dropped, an update opens a page)."""
    sent = (ref or {}).get("dedup_key")
    return {**record, "dedup_key": sent} if isinstance(sent, str) and sent else record


def _finding(f: dict[str, Any]) -> dict[str, Any]:
    """A finding as receivers get it: its numbers, and why it was read from a partial answer
    (`partial`, only then: the page must say the number may be a missing store's share)."""
    out = {k: f.get(k) for k in _FINDING_KEYS}
    return {**out, "partial": why} if (why := partial_read(f)) else out


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
        "findings": [_finding(f) for f in findings],
        "finding_count": len(snap.findings),
        "links": {k: v for k, v in links.items() if v},
    })


MAX_MODELS = 20  # a pager lists this many affected models; the count says how many there are


def group_record(group: dict[str, Any], *, prefix: str, updated_at: float) -> dict[str, Any]:
    """A shared cause's page (`group` is the group's message payload, monitor/cycle/grouping.py):
    the same fields as an incident's record, so every receiver maps it the same way, plus
    `group_id`, `cause_kind`, `cause` and `models` (each with its own findings)."""
    resolved = group["status"] == IncidentStatus.RESOLVED
    members = [m for m in group.get("models") or [] if resolved or m.get("open")]
    names = [str(m["model"]) for m in members]
    first = members[0] if members else {}
    models = [{"model": m["model"], "incident_id": m.get("incident_id"), "severity": m.get("severity"),
               "title": m.get("title", ""),
               "findings": [{k: f.get(k) for k in (*_FINDING_KEYS, "partial") if k in f}
                            for f in (m.get("findings") or [])]}
              for m in members[:MAX_MODELS]]
    findings = [{**f, "entity": f"{m['model']}: {f.get('entity')}"} for m in models for f in m["findings"]]
    return json_safe({
        "dedup_key": group_dedup_key(prefix, group["group_id"]),
        "group_id": group["group_id"],
        "incident_id": None,
        "model": ", ".join(names),
        "severity": group["severity"],
        "status": IncidentStatus.RESOLVED if resolved else IncidentStatus.OPEN,
        "title": f"{len(names)} models share one cause: {group['cause_kind']} {group['cause']}",
        "opened_at": group.get("opened_at") or updated_at,
        "updated_at": updated_at,
        "resolved_at": updated_at if resolved else None,
        "acknowledged_by": None,
        "cause_kind": group["cause_kind"],
        "cause": group["cause"],
        "top_cause": {"kind": group["cause_kind"], "entity": group["cause"], "score": None,
                      "explanation": first.get("cause_explanation") or ""},
        "findings": findings[:MAX_FINDINGS],
        "finding_count": len(findings),
        "models": models,
        "model_count": len(names),
        "links": {},
    })
