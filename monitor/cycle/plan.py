"""Stage 4, plan: what the store knows about the model, read once before planning, and
the model's configured rules; the chain itself is alerts/pipeline.py."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.inhibition import DEFAULT_RULES, InhibitRule
from alerts.lifecycle import LifecycleSettings, OpenIncident, split_told
from alerts.pipeline import AlertInputs, AlertPlan, AlertRules, ModelHistory, plan_alerts
from alerts.policy import Policy, RollbackGuard, Severity
from alerts.rollback import ActionStatus
from alerts.routing import Routes
from alerts.silences import Silence
from correlators.causes import released_into
from correlators.incident import Incident
from detectors.records import DeployEvent, Finding
from monitor.config import ModelConfig, PolicyConfig
from monitor.cycle.rollback_pending import ABANDONED
from monitor.store import detector_states
from monitor.store.repository import IncidentRow, ModelStateRow, Store

# An incident with one of these is not rolled back again automatically: a pending one is
# in flight (and retries itself), a done or no-op one is where it should be.
ROLLBACK_SETTLED = (ActionStatus.DONE, ActionStatus.NOOP, ActionStatus.PENDING)
# ... and these only when Vigil's own: its dry run said what it would do, its failure gave up
# or found the alias moved by someone. A person's dry run (to see what would happen) or
# failed attempt (a registry blip) leaves the automatic rollback armed.
ROLLBACK_SETTLED_IF_OWN = (ActionStatus.DRY_RUN, ActionStatus.FAILED)
# ... but not one abandoned with nothing moved (past its TTL during an MLflow outage, or a
# guard such as a maintenance window): nothing was tried to the end, so the next cycle may ask
# again, through every guard afresh.


def rollback_settled(actions: list[dict[str, Any]], suspect: str | None = None) -> bool:
    """Whether an incident's actions settle its automatic rollback. A person's dry run that
    found the alias at the target is recorded `noop` (as the real one would be), but it is
    still only a question: it leaves the rollback armed, as their other dry runs do.
    `suspect`: the version serving now when the incident's top cause is its deploy. A rollback
    of other versions (v2 to v1) does not settle the question of a release made since (v3,
    regressing in the same incident): it was never asked of, not even refused."""
    def settles(a: dict[str, Any]) -> bool:
        if (suspect is not None and a["status"] != ActionStatus.PENDING  # one in flight settles it, whatever
                and suspect not in (a.get("from_version"), a.get("to_version"))):
            return False
        own = a.get("actor") == "vigil"
        if a.get("dry_run") and a["status"] == ActionStatus.NOOP:
            return own
        if a["status"] == ActionStatus.FAILED and str(a.get("detail") or "").startswith(f"{ABANDONED}:"):
            return False
        return a["status"] in ROLLBACK_SETTLED or (a["status"] in ROLLBACK_SETTLED_IF_OWN and own)
    return any(a["kind"] == "rollback" and settles(a) for a in actions)


def to_policy(p: PolicyConfig) -> Policy:
    r = p.rollback
    return Policy(drift_warning=p.drift_warning, drift_critical=p.drift_critical,
                  kpi_drop_pct=p.kpi_drop_critical_pct, slo_consecutive_cycles=p.slo_consecutive_cycles,
                  cold_start=p.cold_start,
                  rollback=RollbackGuard(enabled=r.enabled, dry_run=r.dry_run, cooldown=r.cooldown,
                                         max_per_day=r.max_per_day, min_confidence=r.min_confidence))


def routes_of(m: ModelConfig) -> Routes:
    return Routes(m.owner_channel, m.oncall_channel)


def alert_rules(m: ModelConfig, p: PolicyConfig, inhibit: tuple[InhibitRule, ...] = DEFAULT_RULES) -> AlertRules:
    return AlertRules(policy=to_policy(p), lifecycle=LifecycleSettings(p.resolve_after_cycles, p.repeat_interval),
                      routes=routes_of(m), inhibit_rules=inhibit, labels=dict(m.labels))


@dataclass(frozen=True)
class StateSeen:
    """The model's state row as the cycle's start read it, for planning: written only by the
    model's own cycle (its poll, before this read, and its apply), under the model's lock and
    lease, so it is read once a cycle rather than again just before planning."""

    slo_streaks: dict[str, int] = field(default_factory=dict)
    quiet_cycles: int = 0
    alias_version: str | None = None
    last_cycle_at: float | None = None


def state_seen(row: ModelStateRow | None) -> StateSeen:
    if row is None:  # never cycled: what `Store.model_state` makes is written by the apply
        return StateSeen()
    return StateSeen(dict(row.slo_streaks or {}), row.quiet_cycles, row.alias_version, row.last_cycle_at)


@dataclass(frozen=True)
class CycleStart:
    """What a cycle builds on, read once as it begins: the detectors' stored state and the
    open incident's story so far."""

    detector_state: dict[str, Any] = field(default_factory=dict)
    earlier_findings: list[Finding] = field(default_factory=list)
    opened_at: float | None = None
    onset: float | None = None
    released: float | None = None  # a release into the open incident (correlators.causes.released_into)
    state: StateSeen | None = None  # None: not read (read_history reads it)


def read_cycle_start(store: Store, model: str) -> CycleStart:
    with store.tx() as s:
        state_row = s.get(ModelStateRow, model)
        state = state_seen(state_row)  # the detectors' state from before their table, and what planning reads
        detector_state = detector_states.load(s, model, state_row.detector_state if state_row is not None else None)
        row = store.open_incident(s, model)
        if row is None:
            return CycleStart(detector_state, state=state)
        earlier, opened_at, onset = [Finding.from_dict(f) for f in row.findings], row.opened_at, row.onset
    released = released_into(model, onset, earlier, store.deploys(model, since=onset))
    return CycleStart(detector_state, earlier, opened_at, onset, released, state)


def open_state(row: IncidentRow | None) -> OpenIncident | None:
    if row is None:
        return None
    digest, told = split_told(row.notified_digest)
    return OpenIncident(severity=Severity(row.severity), digest=digest,
                        last_notified_at=row.last_notified_at, silenced_until=row.silenced_until,
                        acknowledged=row.acknowledged_by is not None, told_severity=told)


def next_streaks(streaks: dict[str, int], breached: dict[str, bool]) -> dict[str, int]:
    """Consecutive breached cycles per SLO, this cycle included."""
    out = dict(streaks)
    for name, b in breached.items():
        out[name] = out.get(name, 0) + 1 if b else 0
    return out


def blamed_deploy(content: Incident | None) -> str | None:
    """The version whose deploy the incident's top cause is, if it is one."""
    top = content.top_cause if content is not None else None
    return top.deploy.version if top is not None and top.deploy is not None else None


@dataclass(frozen=True)
class DeploysSeen:
    """The model's deploys in the story's window, and its last deploy up to the cycle's time."""

    window: list[DeployEvent]
    last: DeployEvent | None


def read_deploys(store: Store, model: str, since: float, t: float) -> DeploysSeen:
    """The last deploy first: one older than `since` (most cycles) means the window holds none,
    so it takes one query instead of two."""
    last = store.last_deploy(model, until=t)
    if last is None or last.at < since:
        return DeploysSeen([], last)
    return DeploysSeen(store.deploys(model, since=since, until=t), last)


def read_history(store: Store, model: str, t: float, slo_breached: dict[str, bool],
                 blamed: str | None = None, seen: StateSeen | None = None,
                 deployed: DeploysSeen | None = None) -> ModelHistory:
    """The open incident read just before planning, so an ack or silence made during the cycle
    counts. `blamed`: the version whose deploy the incident's top cause is, if any. `seen`: the
    state row as the cycle's start read it (`CycleStart.state`), `deployed` the deploys as the
    cycle read them in this transaction; None reads them here."""
    last_deploy = deployed.last if deployed is not None else store.last_deploy(model, until=t)
    with store.tx() as s:
        state = seen if seen is not None else state_seen(s.get(ModelStateRow, model))
        row = store.open_incident(s, model)
        streaks = next_streaks(dict(state.slo_streaks), slo_breached)
        quiet = state.quiet_cycles
        suspect = blamed if blamed is not None and blamed == state.alias_version else None
        done = row is not None and rollback_settled(store.incident_actions(s, row.id), suspect)
        incident = open_state(row)
        latest = latest_time(state.last_cycle_at, row)
    return ModelHistory(open_incident=incident, last_deploy_at=last_deploy.at if last_deploy else None,
                        slo_streaks=streaks, quiet_cycles=quiet, recent_rollbacks=store.rollback_times(model),
                        rollback_done_for_incident=done, latest_at=latest)


def latest_time(last_cycle_at: float | None, row: IncidentRow | None) -> float | None:
    """The latest time the model's history holds; a cycle before it means the clock went back."""
    times = [last_cycle_at] + ([row.opened_at, row.updated_at] if row is not None else [])
    known = [x for x in times if x is not None]
    return max(known) if known else None


# The open incident and the live silences as read under the incident's lock -> its plan.
Replan = Callable[[OpenIncident | None, tuple[Silence, ...]], AlertPlan]


def planner(inputs: AlertInputs, rules: AlertRules) -> tuple[AlertPlan, Replan]:
    """The cycle's plan, and the chain again for the open incident and the live silences as the
    apply stage reads them under the incident's lock. An ack, a silence (the Slack "Silence"
    button's, or the incident's own) or a shared cause's page committed in between changes what
    the messages say: planned before it, the on-call who had just taken or silenced the incident
    was reminded of it. The same incident and silences as planned from keep the plan."""
    plan = plan_alerts(inputs, rules)

    def again(now_open: OpenIncident | None, live: tuple[Silence, ...]) -> AlertPlan:
        if now_open == inputs.history.open_incident and live == inputs.suppression.silences:
            return plan
        history = replace(inputs.history, open_incident=now_open)
        return plan_alerts(replace(inputs, history=history, suppression=replace(inputs.suppression, silences=live)),
                           rules)
    return plan, again
