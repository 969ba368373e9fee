"""A generic signed webhook: one POST of the receiver record per incident state change.

Headers, the same as the rollback webhook's (monitor/executors/webhook.py) so one
receiver-side check serves both: `X-Vigil-Timestamp: <Unix seconds>`,
`X-Vigil-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` over the exact
body bytes, and `Idempotency-Key: <dedup key>:<outbox row id>`. The key and the body are
the same on every delivery of one state change (retries, a restart, another replica),
so a receiver that acts once per key acts once per change. Body: the record with
`event` (triggered | acknowledged | resolved) and `idempotency_key`; with `events:
[rollback]`, each rollback's record (alerts.receivers.changes.py) with `event: rollback`,
keyed `rollback:<model>:<intent>:<outbox row id>`; with `[deploy]`, each alias move as
`event: deploy`, keyed `deploy:<model>:<version>:<seen at>:<outbox row id>`. Any 2xx is
delivered; 408/425/429 and 5xx are retried, another 4xx fails with the receiver's answer.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.base import ALL, RECEIVER_ROUTE, Receiving
from alerts.receivers.changes import webhook_change_body
from alerts.receivers.http import HttpCaller, SecretSource, run_delivery
from alerts.receivers.mapping import sent_ref, webhook_body
from alerts.receivers.record import as_sent

log = logging.getLogger("vigil.receivers.webhook")


class WebhookReceiver:
    route = RECEIVER_ROUTE

    def __init__(self, name: str, url: str, secret: SecretSource, http: HttpCaller, *,
                 receiving: Receiving = ALL) -> None:
        self.receiving = receiving
        self.name, self.url, self.secret, self.http = name, url, secret, http

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        if message.kind in (MessageKind.ROLLBACK, MessageKind.DEPLOY):  # written only when `events` asks
            key = f"{message.key}:{message.id}"
            return run_delivery(lambda: self._post(webhook_change_body(message.payload, key), key, message.ref))
        if message.kind != MessageKind.INCIDENT:
            return DeliveryResult(DeliveryStatus.DELIVERED, ref=message.ref)
        record = as_sent(message.payload, message.ref)  # the receiver knows the incident by its first key
        key = f"{record['dedup_key']}:{message.id}"
        return run_delivery(lambda: self._post(webhook_body(record, key), key, sent_ref(record, message.ref)))

    def _post(self, doc: dict[str, Any], key: str, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        resp = self.http.post(self.url, body, {"Idempotency-Key": key}, sign_with=self.secret.read().encode())
        log.info("webhook accepted", extra={"receiver": self.name, "event": doc["event"], "idempotency_key": key,
                                            "status": resp.status_code})
        return ref
