"""Outbox records and the notifier contract.

Notifications are written to the outbox in the same transaction as the incident
change that caused them; a sender drains it. Every notifier (Slack, the JSON-lines
sink, Grafana annotations) implements `Notifier` and knows nothing about policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class MessageKind(StrEnum):
    INCIDENT = "incident"  # open / update / resolve of one incident: one Slack message, updated in place
    DEPLOY = "deploy"  # a deploy event (Grafana annotation)
    ROLLBACK = "rollback"  # a rollback ran (Grafana annotation, Slack thread)


class OutboxStatus(StrEnum):
    """Where an outbox row stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: rate limit, 5xx, timeout; try again later
    FAILED = "failed"  # permanent: bad channel, bad token; kept, surfaced, not retried


@dataclass
class OutboxMessage:
    id: int
    notifier: str  # "slack", "sink", "grafana"
    kind: MessageKind
    key: str  # what is updated in place: "incident:42"; deliveries for one key go in order
    payload: dict[str, Any]
    attempts: int = 0
    ref: dict[str, Any] | None = None  # from an earlier delivery for the same key (Slack channel + ts)


@dataclass
class DeliveryResult:
    status: DeliveryStatus
    ref: dict[str, Any] | None = None  # to update the same message later
    error: str = ""
    retry_after: float | None = None  # seconds, when the backend said so (Retry-After)
    detail: dict[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    name: str

    def deliver(self, message: OutboxMessage) -> DeliveryResult: ...
