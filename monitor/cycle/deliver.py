"""Drain the outbox: deliver due messages, at least once, in order per key.

A notifier that raises is treated like a transient failure: the message stays
pending with a backoff, so a crash or an outage delays it but never loses it.

One round at a time per Vigil: the daemon's sender thread and the API (which drains
the outbox right after a rollback) would otherwise both read the same pending row and
post it twice, leaving two Slack messages for one incident.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from alerts.outbox import DeliveryResult, DeliveryStatus

if TYPE_CHECKING:
    from monitor.vigil import Vigil

log = logging.getLogger("vigil.sender")
MAX_BACKOFF_S = 3600.0


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 15.0 * (2 ** min(attempts, 12)))


MAX_PASSES = 10


def deliver_due(vigil: "Vigil", now: float, *, limit: int = 100) -> int:
    """Deliver what is due. One pass takes the oldest pending message of each key; the
    next pass the one after it, so several updates of one incident go out in order in
    one call (bounded, so a flood cannot hold the sender forever)."""
    with vigil.delivery_lock:
        total = 0
        for _ in range(MAX_PASSES):
            n = _deliver_round(vigil, now, limit)
            total += n
            if n == 0:
                break
        return total


def _deliver_round(vigil: "Vigil", now: float, limit: int) -> int:
    delivered = 0
    for msg in vigil.store.due_messages(now, limit=limit):
        notifier = vigil.notifiers.get(msg.notifier)
        if notifier is None:
            result = DeliveryResult(DeliveryStatus.RETRY,
                                    error=f"notifier {msg.notifier!r} is not configured in this process")
        else:
            try:
                result = notifier.deliver(msg)
            except Exception as e:  # noqa: BLE001 - a notifier bug must not lose the message
                log.exception("notifier raised", extra={"notifier": msg.notifier, "message": msg.id})
                result = DeliveryResult(DeliveryStatus.RETRY, error=f"{type(e).__name__}: {e}")
        vigil.store.record_delivery(msg, result, now, backoff(msg.attempts))
        vigil.metrics.notifications.labels(msg.notifier, str(result.status)).inc()
        if result.status == DeliveryStatus.DELIVERED:
            delivered += 1
        else:
            log.warning("delivery %s", result.status,
                        extra={"notifier": msg.notifier, "key": msg.key, "error": result.error,
                               "attempts": msg.attempts + 1})
    vigil.metrics.outbox_pending.set(vigil.store.outbox_counts().get("pending", 0))
    return delivered
