"""The outbox's "grafana" notifier: an outbox message becomes an annotation call, and
the call's outcome a `DeliveryResult`.

The outbox retries RETRY results with back-off and keeps FAILED ones visible, so a
Grafana outage delays annotations but loses none. The annotation id travels in
`DeliveryResult.ref` / `OutboxMessage.ref`, so a resolve patches the region its open
created.
"""
from __future__ import annotations

import logging

from alerts.outbox import DeliveryResult, DeliveryStatus, OutboxMessage
from alerts.routing import TIMELINE_ROUTE
from dashboards.annotations import AnnotationEvent, AnnotationKind, PayloadError, annotation_body, upsert_annotation
from dashboards.grafana_api import GrafanaClient, GrafanaError, GrafanaUnavailable

log = logging.getLogger(__name__)


class GrafanaAnnotationNotifier:
    """Outbox notifier posting annotations to Grafana (name = "grafana")."""

    name = "grafana"
    route = TIMELINE_ROUTE  # one region per incident, plus deploys and rollbacks

    def __init__(self, client: GrafanaClient) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str, token: str | None, timeout_s: float = 10.0) -> GrafanaAnnotationNotifier:
        # retries=0: the outbox owns retrying, with back-off that survives restarts.
        return cls(GrafanaClient(url, token, timeout_s=timeout_s, retries=0))

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        try:
            event = AnnotationEvent(AnnotationKind(message.kind), message.key, message.payload)
            body = annotation_body(event)
        except (PayloadError, ValueError) as e:
            return DeliveryResult(DeliveryStatus.FAILED, error=f"message {message.id} ({message.key}): {e}")
        try:
            annotation_id = upsert_annotation(self.client, event, body,
                                              known_id=(message.ref or {}).get("annotation_id"),
                                              retried=message.attempts > 0)
        except GrafanaUnavailable as e:
            return DeliveryResult(DeliveryStatus.RETRY, ref=message.ref, error=str(e), retry_after=e.retry_after,
                                  detail={"status": e.status})
        except GrafanaError as e:  # auth, bad request, conflict: retrying will not help
            return DeliveryResult(DeliveryStatus.FAILED, ref=message.ref, error=str(e), detail={"status": e.status})
        log.info("grafana annotation delivered",
                 extra={"message_id": message.id, "key": message.key, "annotation_id": annotation_id})
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"annotation_id": annotation_id},
                              detail={"time": body["time"], "timeEnd": body.get("timeEnd")})
