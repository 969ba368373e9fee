"""What a receiver is told of a rollback (`events: [rollback]`): one record per outcome,
built in the outcome's transaction like an incident's record, so every delivery of it
(retries, another replica, a restart) sends the same thing.

The record: `kind` (rollback, canary_pull, canary_promote, promotion_suggested), `model`,
`status` (done, failed, dry_run, noop, refused, suggested), `from_version`, `to_version`,
`at` (Unix seconds), `reason`, `actor`, `detail`, `dry_run`, `incident_id` and
`incident_dedup_key` (the key the receiver knows the incident by, when it was paged for
it; else null), so a change-management tool can tie the rollback to the page.
"""
from __future__ import annotations

from typing import Any

from alerts.receivers.mapping import iso
from detectors.records import json_safe

_KEYS = ("kind", "model", "status", "from_version", "to_version", "at", "reason", "actor", "detail", "dry_run",
         "incident_id")
# A PagerDuty change event is for a change to production: a dry run, a no-op, a refusal or
# a suggestion moved nothing, so only these are sent there (a webhook hears of every one).
CHANGED = frozenset({"done", "failed"})  # failed: it may have moved part of production
MAX_SUMMARY = 1024  # PagerDuty's payload.summary limit


def rollback_record(payload: dict[str, Any], incident_dedup_key: str | None) -> dict[str, Any]:
    record = {k: payload.get(k) for k in _KEYS}
    record["kind"] = record["kind"] or "rollback"
    record["incident_dedup_key"] = incident_dedup_key
    return json_safe(record)


def change_summary(record: dict[str, Any]) -> str:
    """One line, e.g. `Vigil rollback of ranker v7 -> v6: done (p99 latency 0.8 s > 0.5 s SLO)`."""
    what = str(record["kind"]).replace("_", " ")
    reason = f" ({record['reason']})" if record.get("reason") else ""
    line = (f"Vigil {what} of {record['model']} v{record.get('from_version')} -> v{record.get('to_version')}: "
            f"{str(record.get('status')).replace('_', ' ')}{reason}")
    return line[:MAX_SUMMARY]


def rollback_note(record: dict[str, Any]) -> str:
    """The summary and what was done, for a note on the incident's alert (Opsgenie)."""
    detail = f"\n{record['detail']}" if record.get("detail") else ""
    return (change_summary(record) + detail)[:25000]


def pagerduty_change(record: dict[str, Any], routing_key: str, *, source: str) -> dict[str, Any]:
    """A PagerDuty change event (POST /v2/change/enqueue): summary, source, timestamp and the
    record as custom details. PagerDuty keeps no dedup key for changes: a retry after a lost
    answer may show one change twice on the service's timeline (it pages no one)."""
    return {"routing_key": routing_key,
            "payload": {"summary": change_summary(record), "source": source or f"vigil/{record['model']}",
                        "timestamp": iso(float(record["at"])), "custom_details": record}}


def webhook_rollback_body(record: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    return {"event": "rollback", "idempotency_key": idempotency_key, **record}
