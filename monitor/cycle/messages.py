"""Outbox rows for incidents, deploys and rollbacks, written in the caller's transaction
and routed by each notifier's registered route (alerts/routing.py)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from alerts.links import IncidentRef, LinkSettings, incident_links
from alerts.outbox import MessageKind
from alerts.payload import IncidentSnapshot, incident_payload, incident_summary, suggested_action
from alerts.routing import NotifierRegistry
from dashboards.finding_panels import PanelKey, finding_panel
from dashboards.model_dashboard import build_model_dashboard_keyed
from dashboards.uids import model_dashboard_uid
from detectors.records import DeployEvent
from monitor.config import VigilConfig
from monitor.cycle.receivers import ReceiverWriter
from monitor.grafana.specs import dashboard_specs
from monitor.store.repository import IncidentRow, Store
from monitor.store.tables import ModelStateRow

DEFAULT_CHANNEL = "#vigil-alerts"


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Links:
    """Where a message's links point (alerts/links.py) and how it words things, from the config."""

    settings: LinkSettings
    registry_names: dict[str, str] = field(default_factory=dict)
    display: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> time zone, baseline, cold start
    panels: dict[str, dict[PanelKey, int]] = field(default_factory=dict)  # model -> its dashboard's finding panels
    default_channel: str = DEFAULT_CHANNEL  # `slack.default_channel`

    @classmethod
    def from_config(cls, config: VigilConfig) -> Links:
        g, api, msg = config.grafana, config.api, config.messages
        tracking = config.sources.mlflow.tracking_uri
        ui = msg.mlflow_ui_url or (tracking if tracking.startswith(("http://", "https://")) else None)
        settings = LinkSettings(
            grafana_base=g.public_url or g.url, grafana_org=g.org_id, api_base=api.public_url or f"http://{api.host}:{api.port}",
            mlflow_ui=ui, runbooks=dict(msg.runbooks),
            model_runbooks={m.name: dict(m.runbooks) for m in config.models if m.runbooks},
            before_s=msg.grafana_before, after_s=msg.grafana_after)
        display = {m.name: {"time_zone": msg.time_zone, "baseline_s": config.schedule.baseline,
                            "cold_start_s": config.policy_for(m).cold_start,
                            "units": {s.name: s.unit for s in m.slos if s.unit}} for m in config.models}
        return cls(settings, {m.name: m.registry for m in config.models}, display, finding_panels(config),
                   config.slack.default_channel)

    def for_incident(self, row: IncidentRow, now: float, serving_version: str | None) -> dict[str, str | None]:
        ranked = sorted(row.findings, key=lambda f: -(f.get("score") or 0.0))
        top = ranked[0] if ranked else {}
        panel = finding_panel(self.panels.get(row.model, {}), str(top.get("kind")), str(top.get("entity") or ""),
                              str(top.get("statistic") or "")) if top else None
        ref = IncidentRef(model=row.model, incident_id=row.id, dashboard_uid=model_dashboard_uid(row.model),
                          onset=row.onset, last_seen=row.resolved_at or now,
                          kinds=[str(f.get("kind")) for f in ranked],
                          registry_name=self.registry_names.get(row.model),
                          version=_blamed_version(row.causes) or serving_version, panel_id=panel)
        return incident_links(self.settings, ref)


def finding_panels(config: VigilConfig) -> dict[str, dict[PanelKey, int]]:
    """Each model's dashboard as `vigil dashboards` provisions it, built once per config,
    reduced to the panel id of each finding it shows. A link is a convenience: should a
    dashboard fail to build, its links open the whole dashboard and the daemon still runs."""
    try:
        spec = dashboard_specs(config)
        return {m.name: build_model_dashboard_keyed(spec.datasources, m).finding_panels for m in spec.models}
    except Exception as e:  # noqa: BLE001 - never let a cosmetic link stop the daemon
        log.warning("dashboard panels unknown, Grafana links open whole dashboards",
                    extra={"error": f"{type(e).__name__}: {e}"})
        return {}


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


Mentions = Callable[[str, str | None], list[str]]  # (model, severity) -> "<@U…>", "<!subteam^S…>"


class OutboxWriter:
    def __init__(self, store: Store, notifiers: NotifierRegistry, links: Links,
                 mentions: Mentions | None = None) -> None:
        self.store, self.notifiers, self.links = store, notifiers, links
        self.default_channel = links.default_channel  # for models routed to no channel
        self.mentions: Mentions = mentions or (lambda _model, _severity: [])
        self.receivers = ReceiverWriter(store, notifiers)

    def incident(self, s: Session, row: IncidentRow, channels: list[str], now: float,
                 held: bool | None = None, shown: str | None = None) -> None:
        """One message per incident and channel, keyed so later deliveries update it in place.
        `held`: whether a shared cause pages receivers for it (None: read from the store).
        `shown`: the severity to show (default the incident's): an update that is no
        escalation (an ack, a rollback) shows the one people were told, not one a mute holds."""
        snap = snapshot(row) if shown is None else replace(snapshot(row), severity=shown)
        actions = self.store.incident_actions(s, row.id)
        state = s.get(ModelStateRow, row.model)  # read only: a message never creates a model's state
        serving = state.alias_version if state else None
        links = self.links.for_incident(row, now, serving)
        display = self.links.display.get(row.model)
        chat = self.notifiers.taking(MessageKind.INCIDENT, per_channel=True)
        for channel in channels or [self.default_channel]:
            payload = incident_payload(snap, channel=channel, updated_at=now, actions=actions, links=links,
                                       display=display, serving=serving)
            for name in chat:
                self.store.enqueue(s, name, MessageKind.INCIDENT, f"incident:{row.id}:{channel}", payload, now)
        for name in self.notifiers.taking(MessageKind.INCIDENT, per_channel=False):
            self.store.enqueue(s, name, MessageKind.INCIDENT, f"incident:{row.id}", incident_summary(snap), now)
        self.receivers.incident(s, snap, links, now, held)
        # `row.last_notified_at` (the repeat clock) is the caller's: an edit that tells no
        # one new (an ack, a rollback shown) must not restart it, a page or reply does.

    def advice(self, s: Session, row: IncidentRow) -> str:
        """What the incident's message advises now (its `suggested_action`), read in the
        caller's transaction as `incident` would write it."""
        state = s.get(ModelStateRow, row.model)  # read only, as in `incident`
        return suggested_action(row.causes, self.store.incident_actions(s, row.id), row.status, row.model,
                                state.alias_version if state else None)

    def edit_channels(self, s: Session, row: IncidentRow, routed: list[str]) -> list[str]:
        """Where an edit that tells no one new (an ack, a rollback shown) goes: the channels
        that have the incident's message. Routed anew, a reload that moved owner_channel
        posted a fresh copy in the new channel and left the old message unacknowledged;
        `routed` only when no channel has it (no chat notifier keeps one per channel)."""
        return self.store.outbox.told_channels(s, row.id) or routed

    def with_told(self, s: Session, row: IncidentRow, routed: list[str]) -> list[str]:
        """`routed`, and the channels that have the incident's message though the routes no
        longer name them (a reload moved owner_channel): their message is edited, not left
        showing an older state with buttons people still press."""
        return [*routed, *(c for c in self.store.outbox.told_channels(s, row.id) if c not in routed)]

    def receivers_only(self, s: Session, row: IncidentRow, now: float) -> None:
        """A change that a shared cause holds (its group speaks for it, in chat and to the
        pagers): only a receiver that has this incident already (it paged on its own before
        it joined) gets it, so nothing it paged for is left open there."""
        state = s.get(ModelStateRow, row.model)
        links = self.links.for_incident(row, now, state.alias_version if state else None)
        self.receivers.held_change(s, snapshot(row), links, now)

    def reply(self, s: Session, row: IncidentRow, channels: list[str], change: str, previous: str | None,
              now: float) -> None:
        """A state change as a reply in the thread of each channel's incident message, after
        its update (same key, so in order, and the sender hands it the message's ref).
        Slack notifies no one of an edit; a reply with @-mentions reaches people."""
        # A resolve mentions those of the severity people were told (`previous`): an on-call
        # never paged (the escalation came under a silence) is not pinged for its end.
        mentions = self.mentions(row.model, previous if change == "resolved" and previous else row.severity)
        reasons = [r for r in (row.reasons or []) if isinstance(r, str)]
        for channel in channels or [self.default_channel]:
            payload = {"incident_id": row.id, "model": row.model, "channel": channel, "change": change,
                       "severity": row.severity, "previous_severity": previous, "status": row.status,
                       "title": row.title, "reason": reasons[0] if reasons else "", "mentions": mentions,
                       "opened_at": row.opened_at, "resolved_at": row.resolved_at, "at": now}
            for name in self.notifiers.taking(MessageKind.REPLY, per_channel=True):
                self.store.enqueue(s, name, MessageKind.REPLY, f"incident:{row.id}:{channel}", payload, now)

    def _group_mentions(self, models: list[str], severity: str) -> list[str]:
        """Every on-call of the members a channel is for, once each."""
        return list(dict.fromkeys(x for model in models for x in self.mentions(model, severity)))

    def group(self, s: Session, payload: dict[str, Any], channels: dict[str, list[str]], now: float) -> None:
        """One message per shared cause and channel (-> the members routed there), updated in
        place like an incident's."""
        everyone = [m["model"] for m in payload.get("models") or []]
        for channel, models in (channels or {self.default_channel: everyone}).items():
            body = {**payload, "channel": channel, "updated_at": now,
                    "mentions": self._group_mentions(models, payload["severity"])}
            for name in self.notifiers.taking(MessageKind.GROUP, per_channel=True):
                self.store.enqueue(s, name, MessageKind.GROUP, f"group:{payload['group_id']}:{channel}", body, now)

    def group_receivers(self, s: Session, payload: dict[str, Any], now: float) -> None:
        """The shared cause's page to the receivers: one alert per group, with its own key."""
        self.receivers.group(s, payload, now)

    def group_reply(self, s: Session, payload: dict[str, Any], channels: dict[str, list[str]], change: str,
                    previous: str | None, now: float) -> None:
        """A shared cause's escalation or resolve, in the thread of its message in each channel
        that had one (a channel new to the group gets the message itself)."""
        models = payload.get("models") or []
        names = ", ".join(m["model"] for m in models)
        # a resolve mentions those of the severity last told, not an on-call never paged for it
        told = previous if change == "resolved" and previous else payload["severity"]
        for channel, routed in (channels or {self.default_channel: [m["model"] for m in models]}).items():
            body = {"group_id": payload["group_id"], "model": f"{payload['cause_kind']} {payload['cause']} ({names})",
                    "channel": channel, "change": change, "severity": payload["severity"],
                    "previous_severity": previous, "status": payload["status"],
                    "title": f"{len(models)} models", "reason": "", "opened_at": payload.get("opened_at"),
                    "resolved_at": now if change == "resolved" else None, "at": now,
                    "mentions": self._group_mentions(routed, told)}
            for name in self.notifiers.taking(MessageKind.REPLY, per_channel=True):
                self.store.enqueue(s, name, MessageKind.REPLY, f"group:{payload['group_id']}:{channel}", body, now)

    def deploy(self, s: Session, event: DeployEvent, t: float) -> None:
        payload = {"model": event.model, "alias": event.alias, "version": event.version,
                   "previous_version": event.previous_version, "at": event.at}
        key = f"deploy:{event.model}:{event.version}:{int(t)}"
        for name in self.notifiers.taking(MessageKind.DEPLOY):
            self.store.enqueue(s, name, MessageKind.DEPLOY, key, payload, t)
        self.receivers.deploy(s, event.model, {**payload, "source": event.source}, t, key=key)

    def rollback(self, s: Session, model: str, payload: dict[str, Any], now: float, *, key: str) -> None:
        """`key` names the rollback (its intent), so two in one second stay two messages."""
        for name in self.notifiers.taking(MessageKind.ROLLBACK):
            self.store.enqueue(s, name, MessageKind.ROLLBACK, f"rollback:{model}:{key}", payload, now)
        self.receivers.rollback(s, model, payload, now, key=key)

    def rollback_note(self, s: Session, model: str, channels: list[str], payload: dict[str, Any], now: float, *,
                      key: str) -> None:
        """A move of a model nobody was told of an incident for (muted since it opened, or no
        incident): a message of its own in the chat tools, so a change to production is never
        silent. It pages no receiver and mentions no one: it is no page of the incident."""
        for name in self.notifiers.taking(MessageKind.INCIDENT, per_channel=True):
            for channel in channels:
                self.store.enqueue(s, name, MessageKind.ROLLBACK, f"rollback:{model}:{key}:{channel}",
                                   {**payload, "channel": channel}, now)
