"""Pager receivers driven message by message against the fake PagerDuty and Opsgenie: one
incident's receiver record as the outbox renders it, and its delivery; and a daemon's
deliveries to a receiver, with the acked warning the rollback tests start from."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.http import HttpCaller, RetrySettings
from monitor.config import VigilConfig
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

PD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OG_KEY = "og-key-1"
T = 1_800_000_000.0


def incident_record(*, prefix: str = "vigil", severity: str = "critical", status: str = "open",
                    acknowledged_by: str | None = None) -> dict[str, Any]:
    """Incident 1 of `recommender`, opened at T, as a receiver record."""
    return {"dedup_key": f"{prefix}-incident-1", "incident_id": 1, "model": "recommender", "severity": severity,
            "status": status, "title": "CTR down", "opened_at": T, "updated_at": T + 60,
            "resolved_at": T + 600 if status == "resolved" else None, "acknowledged_by": acknowledged_by,
            "top_cause": None, "findings": [], "finding_count": 0, "links": {}}


def one_try_http() -> HttpCaller:
    return HttpCaller("test", timeout_s=5.0, retry=RetrySettings(max_attempts=1, backoff_s=0.0, max_wait_s=0.0))


def deliver(receiver: Any, n: int, payload: dict[str, Any], ref: dict[str, Any] | None) -> DeliveryResult:
    """Message `n` of incident 1, sent with the ref the previous delivery left; it must go through."""
    result: DeliveryResult = receiver.deliver(
        OutboxMessage(id=n, notifier="r", kind=MessageKind.INCIDENT, key="incident:1", payload=payload, ref=ref))
    assert result.status == DeliveryStatus.DELIVERED, result.error
    return result


def deliver_all(vigil: Vigil, t: float) -> None:
    """Deliver until nothing is left (a message a delivery enqueues goes on the next round)."""
    for _ in range(5):
        if vigil.deliver(t) == 0:
            break


def an_acked_warning(tmp_path: Path, receiver: dict[str, Any]) -> tuple[VigilConfig, Vigil, Any]:
    """A daemon told to page `receiver`: the warning it opened at T0 and the owner's ack of it
    at T0 + 30, both delivered. Its config, the daemon and the incident."""
    cfg = make_config(tmp_path, receivers=[receiver], policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=serving_registry(version="2"))
    assert vigil.run_cycle(MODEL, T0).step == "open"  # a warning
    deliver_all(vigil, T0)
    (row,) = vigil.store.incidents()
    vigil.operator.acknowledge(row.id, "api:owner", T0 + 30)
    deliver_all(vigil, T0 + 30)
    return cfg, vigil, row
