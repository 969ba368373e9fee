"""Outbox rows for incidents, deploys and rollbacks, written in the caller's transaction
and routed by each notifier's registered route (alerts/routing.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from alerts.links import IncidentRef, LinkSettings, incident_links
from alerts.outbox import MessageKind
from alerts.payload import IncidentSnapshot, incident_payload, incident_summary
from alerts.routing import NotifierRegistry
from dashboards.uids import model_dashboard_uid
from detectors.records import DeployEvent
from monitor.config import VigilConfig
from monitor.cycle.receivers import ReceiverWriter
from monitor.store.repository import IncidentRow, Store
from monitor.store.tables import ModelStateRow

DEFAULT_CHANNEL = "#vigil-alerts"


@dataclass(frozen=True)
class Links:
    """Where a message's links point (alerts/links.py) and how it words things, from the config."""

    settings: LinkSettings
    registry_names: dict[str, str] = field(default_factory=dict)
    display: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> time zone, baseline, cold start

    @classmethod
    def from_config(cls, config: VigilConfig) -> Links:
        g, api, msg = config.grafana, config.api, config.messages
        tracking = config.sources.mlflow.tracking_uri
        ui = msg.mlflow_ui_url or (tracking if tracking.startswith(("http://", "https://")) else None)
        settings = LinkSettings(
            grafana_base=g.public_url or g.url, api_base=api.public_url or f"http://{api.host}:{api.port}",
            mlflow_ui=ui, runbooks=dict(msg.runbooks),
            model_runbooks={m.name: dict(m.runbooks) for m in config.models if m.runbooks},
            before_s=msg.grafana_before, after_s=msg.grafana_after)
        display = {m.name: {"time_zone": msg.time_zone, "baseline_s": config.schedule.baseline,
                            "cold_start_s": config.policy_for(m).cold_start,
                            "units": {s.name: s.unit for s in m.slos if s.unit}} for m in config.models}
        return cls(settings, {m.name: m.registry for m in config.models}, display)

    def for_incident(self, row: IncidentRow, now: float, serving_version: str | None) -> dict[str, str | None]:
        ranked = sorted(row.findings, key=lambda f: -(f.get("score") or 0.0))
        ref = IncidentRef(model=row.model, incident_id=row.id, dashboard_uid=model_dashboard_uid(row.model),
                          onset=row.onset, last_seen=row.resolved_at or now,
                          kinds=[str(f.get("kind")) for f in ranked],
                          registry_name=self.registry_names.get(row.model),
                          version=_blamed_version(row.causes) or serving_version)
        return incident_links(self.settings, ref)


def _blamed_version(causes: list[dict[str, Any]]) -> str | None:
    """The version a deploy cause blames: the one to look at in the registry."""
    for c in causes:
        deploy = c.get("deploy") if isinstance(c, dict) else None
        if c.get("kind") == "deploy" and isinstance(deploy, dict) and deploy.get("version"):
            return str(deploy["version"])
    return None


def snapshot(row: IncidentRow) -> IncidentSnapshot:
    return IncidentSnapshot(incident_id=row.id, model=row.model, severity=row.severity, status=row.status,
                            title=row.title, opened_at=row.opened_at, resolved_at=row.resolved_at,
                            acknowledged_by=row.acknowledged_by, findings=row.findings, causes=row.causes,
                            cold_start=row.cold_start)


class OutboxWriter:
    def __init__(self, store: Store, notifiers: NotifierRegistry, links: Links) -> None:
        self.store, self.notifiers, self.links = store, notifiers, links
        self.receivers = ReceiverWriter(store, notifiers)

    def incident(self, s: Session, row: IncidentRow, channels: list[str], now: float) -> None:
        """One message per incident and channel, keyed so later deliveries update it in place."""
        snap = snapshot(row)
        actions = self.store.incident_actions(s, row.id)
        state = s.get(ModelStateRow, row.model)  # read only: a message never creates a model's state
        links = self.links.for_incident(row, now, state.alias_version if state else None)
        display = self.links.display.get(row.model)
        chat = self.notifiers.taking(MessageKind.INCIDENT, per_channel=True)
        for channel in channels or [DEFAULT_CHANNEL]:
            payload = incident_payload(snap, channel=channel, updated_at=now, actions=actions, links=links,
                                       display=display)
            for name in chat:
                self.store.enqueue(s, name, MessageKind.INCIDENT, f"incident:{row.id}:{channel}", payload, now)
        for name in self.notifiers.taking(MessageKind.INCIDENT, per_channel=False):
            self.store.enqueue(s, name, MessageKind.INCIDENT, f"incident:{row.id}", incident_summary(snap), now)
        self.receivers.incident(s, snap, links, now)
        row.last_notified_at = now

    def deploy(self, s: Session, event: DeployEvent, t: float) -> None:
        payload = {"model": event.model, "alias": event.alias, "version": event.version,
                   "previous_version": event.previous_version, "at": event.at}
        for name in self.notifiers.taking(MessageKind.DEPLOY):
            self.store.enqueue(s, name, MessageKind.DEPLOY, f"deploy:{event.model}:{event.version}:{int(t)}",
                               payload, t)

    def rollback(self, s: Session, model: str, payload: dict[str, Any], now: float, *, key: str) -> None:
        """`key` names the rollback (its intent), so two in one second stay two messages."""
        for name in self.notifiers.taking(MessageKind.ROLLBACK):
            self.store.enqueue(s, name, MessageKind.ROLLBACK, f"rollback:{model}:{key}", payload, now)
