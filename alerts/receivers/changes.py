"""What a receiver is told of a change to production (`events: [rollback, deploy]`): one
record per rollback outcome or deploy, built in the transaction that recorded it like an
incident's record, so every delivery of it (retries, another replica, a restart) sends the
same thing.

A deploy's record: `kind` deploy, `model`, `alias`, `version`, `previous_version`, `at`,
`source` (registry: the poll saw the alias move; response: a move made while an incident
was open, a person's answer to it).

The record: `kind` (rollback, canary_pull, canary_promote, promotion_suggested), `model`,
`status` (done, failed, dry_run, noop, refused, suggested), `from_version`, `to_version`,
`at` (Unix seconds), `reason`, `actor`, `detail`, `dry_run`, `incident_id` and
`incident_dedup_key` (the key the receiver knows the incident by, when it was paged for
it; else null), so a change-management tool can tie the rollback to the page, and `moved`
(the layers it left serving `to_version`: all of them when done, those moved before it gave
up when failed, with one set but not yet in effect, else none; null for a promotion suggestion).
"""
from __future__ import annotations

from typing import Any

from alerts.receivers.mapping import iso
from detectors.records import json_safe

_KEYS = ("kind", "model", "status", "from_version", "to_version", "at", "reason", "actor", "detail", "dry_run",
         "incident_id", "moved")
_DEPLOY_KEYS = ("model", "alias", "version", "previous_version", "at", "source")
MAX_SUMMARY = 1024  # PagerDuty's payload.summary limit


def changed_production(record: dict[str, Any]) -> bool:
    """Whether a rollback's record is a change to production, what a PagerDuty change event
    records: done, or failed having moved some layer (the alias, not serving). A dry run, a
    no-op, a refusal, a suggestion or a failure that moved nothing did not change it (a
    webhook hears of every one). A record from before `moved` was kept: failed counts."""
    status = record.get("status")
    return status == "done" or (status == "failed" and record.get("moved", True) != [])


def rollback_record(payload: dict[str, Any], incident_dedup_key: str | None) -> dict[str, Any]:
    record = {k: payload.get(k) for k in _KEYS}
    record["kind"] = record["kind"] or "rollback"
    record["incident_dedup_key"] = incident_dedup_key
    return json_safe(record)


def deploy_record(payload: dict[str, Any]) -> dict[str, Any]:
    return json_safe({"kind": "deploy", **{k: payload.get(k) for k in _DEPLOY_KEYS}})


def change_summary(record: dict[str, Any]) -> str:
    """One line, e.g. `Vigil rollback of ranker v7 -> v6: done (p99 latency 0.8 s > 0.5 s SLO)`
    or `ranker 'champion' -> v7 (was v6), seen in the model registry by Vigil`."""
    if record["kind"] == "deploy":
        was = f" (was v{record['previous_version']})" if record.get("previous_version") else ""
        return (f"{record['model']} '{record['alias']}' -> v{record['version']}{was}, "
                "seen in the model registry by Vigil")
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


def webhook_change_body(record: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """`event` rollback or deploy (a canary's pull or promotion is a rollback event of its kind)."""
    return {"event": "deploy" if record["kind"] == "deploy" else "rollback", "idempotency_key": idempotency_key,
            **record}
