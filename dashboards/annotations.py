"""Deploys, incidents and rollbacks as Grafana annotations, delivered through the outbox.

The outbox retries RETRY results with back-off and keeps FAILED ones visible, so a
Grafana outage delays annotations but loses none. Annotations are org-wide (no
dashboard uid) and tagged ["vigil", kind, model, ...]; the generated dashboards
pick them up by tag.

An incident is one region annotation: created when it opens (time = opened_at)
and patched with timeEnd when it resolves. The annotation id travels in
`DeliveryResult.ref` / `OutboxMessage.ref`. Because delivery is at least once, a
retried create first looks for an annotation already carrying the message key's
tag, so a lost response does not leave a duplicate behind.
"""
from __future__ import annotations

import logging
from typing import Any

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.routing import TIMELINE_ROUTE

from .grafana_api import GrafanaAuthError, GrafanaClient, GrafanaError, GrafanaRequestError, GrafanaUnavailable

log = logging.getLogger(__name__)


class PayloadError(ValueError):
    """The outbox message lacks a field the annotation needs."""


def _ms(payload: dict[str, Any], key: str, kind: str) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{kind} payload field {key!r}: expected epoch seconds (number), got {value!r}")
    return int(round(float(value) * 1000))


def _str(payload: dict[str, Any], key: str, kind: str) -> str:
    value = payload.get(key)
    if value is None or value == "":
        raise PayloadError(f"{kind} payload field {key!r} is missing")
    return str(value)


def key_tag(message: OutboxMessage) -> str:
    """A tag unique to the outbox key ("incident:42"), used to find our own annotation again."""
    return message.key


def annotation_body(message: OutboxMessage) -> dict[str, Any]:
    """The POST /api/annotations body for a DEPLOY, ROLLBACK or INCIDENT message."""
    p = message.payload
    kind = MessageKind(message.kind)
    if kind is MessageKind.DEPLOY:
        model, version = _str(p, "model", "deploy"), _str(p, "version", "deploy")
        prev = p.get("previous_version")
        alias = p.get("alias") or "alias"
        text = f"Deploy: {model} {alias} -> v{version}" + (f" (was v{prev})" if prev not in (None, "") else "")
        return {"time": _ms(p, "at", "deploy"), "tags": ["vigil", "deploy", model, f"v{version}", key_tag(message)],
                "text": text}
    if kind is MessageKind.ROLLBACK:
        model = _str(p, "model", "rollback")
        frm, to = _str(p, "from_version", "rollback"), _str(p, "to_version", "rollback")
        status = str(p.get("status") or "done")
        dry = " [dry run]" if p.get("dry_run") else ""
        actor = f" by {p['actor']}" if p.get("actor") else ""
        reason = f": {p['reason']}" if p.get("reason") else ""
        text = f"Rollback{dry} {model} v{frm} -> v{to} ({status}){actor}{reason}"
        return {"time": _ms(p, "at", "rollback"), "tags": ["vigil", "rollback", model, status, key_tag(message)],
                "text": text}
    if kind is MessageKind.INCIDENT:
        model = _str(p, "model", "incident")
        severity = str(p.get("severity") or "unknown")
        title = p.get("title") or f"incident {p.get('incident_id', '')}".strip()
        summary = p.get("summary") or ""
        resolved = p.get("status") == "resolved"
        text = f"[{severity}] {title}" + (" (resolved)" if resolved else "") + (f"\n{summary}" if summary else "")
        body: dict[str, Any] = {"time": _ms(p, "opened_at", "incident"),
                                "tags": ["vigil", "incident", model, severity, key_tag(message)], "text": text}
        if resolved:
            body["timeEnd"] = _ms(p, "resolved_at", "incident")
        return body
    raise PayloadError(f"no Grafana annotation for message kind {message.kind!r}")


class GrafanaAnnotationNotifier:
    """Outbox notifier posting annotations to Grafana (name = "grafana")."""

    name = "grafana"
    route = TIMELINE_ROUTE  # one region per incident, plus deploys and rollbacks

    def __init__(self, client: GrafanaClient) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str, token: str | None, timeout_s: float = 10.0) -> "GrafanaAnnotationNotifier":
        # retries=0: the outbox owns retrying, with back-off that survives restarts.
        return cls(GrafanaClient(url, token, timeout_s=timeout_s, retries=0))

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        try:
            body = annotation_body(message)
        except (PayloadError, ValueError) as e:
            return DeliveryResult(DeliveryStatus.FAILED, error=f"message {message.id} ({message.key}): {e}")
        try:
            annotation_id = self._upsert(message, body)
        except GrafanaUnavailable as e:
            return DeliveryResult(DeliveryStatus.RETRY, ref=message.ref, error=str(e), retry_after=e.retry_after,
                                  detail={"status": e.status})
        except (GrafanaAuthError, GrafanaRequestError, GrafanaError) as e:
            return DeliveryResult(DeliveryStatus.FAILED, ref=message.ref, error=str(e), detail={"status": e.status})
        log.info("grafana annotation delivered",
                 extra={"message_id": message.id, "key": message.key, "annotation_id": annotation_id})
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"annotation_id": annotation_id},
                              detail={"time": body["time"], "timeEnd": body.get("timeEnd")})

    def _upsert(self, message: OutboxMessage, body: dict[str, Any]) -> int:
        known = (message.ref or {}).get("annotation_id")
        if known is not None:
            try:
                self.client.patch_annotation(int(known), body)
                return int(known)
            except GrafanaRequestError as e:
                if e.status != 404:
                    raise
                # Deleted by someone in Grafana: create it again below.
        elif message.attempts > 0:
            found = self.client.find_annotations(tags=["vigil", key_tag(message)], from_ms=body["time"] - 1,
                                                 to_ms=body.get("timeEnd", body["time"]) + 1, limit=1)
            if found:
                self.client.patch_annotation(int(found[0]["id"]), body)
                return int(found[0]["id"])
        return self.client.create_annotation(body)
