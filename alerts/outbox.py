"""Outbox records and the notifier contract.

Notifications are written to the outbox in the same transaction as the incident
change that caused them; a sender drains it. Every notifier (Slack, the JSON-lines
sink, Grafana annotations) implements `Notifier` and knows nothing about policy.

A sender claims a row (`sending`) before it calls the notifier and marks it after. A
sender that dies in between leaves the row `sending` under a lapsed claim: nobody
knows whether the message went out. Before such a row is sent again, a notifier that
can answer (`FindsDelivered`) is asked whether the backend already has it, so a crash
between the call and its record does not show people the message twice.
"""
from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

# When the sender's claim on the message being delivered runs out (time.monotonic()); None
# outside a claimed delivery. Past it another sender may take the row over and send it, then
# the messages after it: a call made later (a process paused in a retry's back-off) sends a
# stale one. A notifier starts no call that cannot end by then. Set around each delivery by
# the sender (monitor/cycle/deliver.py).
CLAIM_ENDS: ContextVar[float | None] = ContextVar("vigil_claim_ends", default=None)


class MessageKind(StrEnum):
    INCIDENT = "incident"  # open / update / resolve of one incident: one Slack message, updated in place
    DEPLOY = "deploy"  # a deploy event (Grafana annotation)
    ROLLBACK = "rollback"  # a rollback ran (Grafana annotation, Slack thread)
    REPLY = "reply"  # a state change (escalation, resolve) or a repeat, in the incident's thread, with @-mentions
    GROUP = "group"  # one message for a shared cause across models, updated in place


class OutboxStatus(StrEnum):
    """Where an outbox row stands."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender; once its claim lapses, the message may or may not be out
    DELIVERED = "delivered"
    FAILED = "failed"
    # not sent: a silence made after it was queued mutes it (monitor/cycle/send_mute.py);
    # `last_error` names the silence. Settled, like a delivered row.
    SUPPRESSED = "suppressed"


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: rate limit, 5xx, timeout; try again later
    FAILED = "failed"  # permanent: bad channel, bad token; kept, surfaced, not retried
    SUPPRESSED = "suppressed"  # not sent: muted at send time (`error` says by what); the notifier was not called


@dataclass
class OutboxMessage:
    id: int
    notifier: str  # "slack", "sink", "grafana"
    kind: MessageKind
    key: str  # what is updated in place: "incident:42"; deliveries for one key go in order
    payload: dict[str, Any]
    attempts: int = 0
    ref: dict[str, Any] | None = None  # from an earlier delivery for the same key (Slack channel + ts)
    created_at: float | None = None  # when the row was written (Vigil's clock): no delivery of it is older


@dataclass
class DeliveryResult:
    status: DeliveryStatus
    ref: dict[str, Any] | None = None  # to update the same message later
    error: str = ""
    retry_after: float | None = None  # seconds, when the backend said so (Retry-After)
    detail: dict[str, Any] = field(default_factory=dict)
    # RETRY only: the request may have reached the backend (a read timeout after sending),
    # so the next attempt must look for the message before sending it again.
    uncertain: bool = False


class Notifier(Protocol):
    name: str

    def deliver(self, message: OutboxMessage) -> DeliveryResult: ...


@runtime_checkable
class FindsDelivered(Protocol):
    """Optional for a notifier: can it tell whether a message already reached its backend?"""

    def find_delivered(self, message: OutboxMessage) -> DeliveryResult | None:
        """Look for `message` (by its outbox id) where it would have been delivered.

        None: not there, sending it is safe. DELIVERED with the ref it landed at: it went
        out, record it instead of sending. RETRY: the backend could not say (rate limit,
        outage), ask again later and do not send meanwhile. FAILED: it can never say
        (a missing scope): the sender sends anyway, since a lost alert is worse than a
        second copy.
        """
        ...
