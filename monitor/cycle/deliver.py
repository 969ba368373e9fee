"""Stage 7, deliver: drain the outbox, at least once, in order per key.

A notifier that raises is treated like a transient failure: the message stays
pending with a backoff, so a crash or an outage delays it but never loses it.

One round at a time per process: the daemon's sender thread and the API (which drains
the outbox right after a rollback) would otherwise both read the same pending row and
post it twice, leaving two Slack messages for one incident.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from alerts.outbox import DeliveryResult, DeliveryStatus, Notifier, OutboxMessage, OutboxStatus
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store

log = logging.getLogger("vigil.sender")
MAX_BACKOFF_S = 3600.0
MAX_PASSES = 10


def backoff(attempts: int) -> float:
    return float(min(MAX_BACKOFF_S, 15.0 * (2 ** min(attempts, 12))))


class OutboxSender:
    def __init__(self, store: Store, notifiers: Mapping[str, Notifier], metrics: VigilMetrics) -> None:
        self.store, self.notifiers, self.metrics = store, notifiers, metrics
        self.lock = threading.Lock()

    def deliver_due(self, now: float, *, limit: int = 100) -> int:
        """Deliver what is due. One pass takes the oldest pending message of each key; the
        next pass the one after it, so several updates of one incident go out in order in
        one call (bounded, so a flood cannot hold the sender forever)."""
        with self.lock:
            total = 0
            for _ in range(MAX_PASSES):
                n = self._round(now, limit)
                total += n
                if n == 0:
                    break
            return total

    def _round(self, now: float, limit: int) -> int:
        delivered = 0
        for msg in self.store.due_messages(now, limit=limit):
            result = self._send(msg)
            self.store.record_delivery(msg, result, now, backoff(msg.attempts))
            self.metrics.notifications.labels(msg.notifier, str(result.status)).inc()
            if result.status == DeliveryStatus.DELIVERED:
                delivered += 1
            else:
                log.warning("delivery %s", result.status,
                            extra={"notifier": msg.notifier, "key": msg.key, "error": result.error,
                                   "attempts": msg.attempts + 1})
        self.metrics.outbox_pending.set(self.store.outbox_counts().get(OutboxStatus.PENDING, 0))
        return delivered

    def _send(self, msg: OutboxMessage) -> DeliveryResult:
        notifier = self.notifiers.get(msg.notifier)
        if notifier is None:
            return DeliveryResult(DeliveryStatus.RETRY,
                                  error=f"notifier {msg.notifier!r} is not configured in this process")
        try:
            return notifier.deliver(msg)
        except Exception as e:  # a notifier bug must not lose the message
            log.exception("notifier raised", extra={"notifier": msg.notifier, "outbox_id": msg.id})
            return DeliveryResult(DeliveryStatus.RETRY, error=f"{type(e).__name__}: {e}")
