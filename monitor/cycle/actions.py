"""Stage 6, act: what Vigil does to the world and what people do to incidents: a guarded
rollback (automatic or asked for), ack and silence. Each is audited; a rollback is
audited before it runs and after, recorded as an action and as a deploy event (so the
next registry poll does not mistake Vigil's own alias move for a new deploy), and
announced through the outbox like everything else."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from alerts import wording
from alerts.lifecycle import IncidentStatus, LifecycleConflict, check_actionable, last_told, split_told, told_digest
from alerts.pipeline import AlertPlan
from alerts.policy import Severity
from alerts.rollback import ActionStatus, RollbackOutcome, TargetChoice, TargetFacts, choose_target
from alerts.slack_actions import SlackAction
from alerts.slack_text import escape, rollback_target
from monitor.config import ModelConfig, VigilConfig
from monitor.cycle.known_good import target_facts, without_deleted
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.plan import routes_of
from monitor.cycle.rollback_ask import FLEET_CAP, STAY_FORCE, FleetCap, RollbackAsk, missing_version
from monitor.cycle.rollback_intents import RollbackRunner
from monitor.cycle.rollback_told import RollbackTeller
from monitor.metrics import VigilMetrics
from monitor.silence_ops import SilenceAsk
from monitor.silence_ops import create_once as create_silence_once
from monitor.store import groups
from monitor.store.audit_log import retry_audited
from monitor.store.intents import AUTOMATIC
from monitor.store.repository import IncidentRow, Store
from monitor.store.tables import ModelStateRow, locked_row

log = logging.getLogger("vigil.actions")
SLACK_SILENCE_S = 4 * 3600.0


class Operator:
    def __init__(self, config: VigilConfig, store: Store, outbox: OutboxWriter, metrics: VigilMetrics,
                 runner: RollbackRunner, registry: Any = None) -> None:
        self.config, self.store, self.outbox, self.metrics, self.runner = config, store, outbox, metrics, runner
        self.registry = registry  # asked whether a rollback target still exists (None: not asked)

    # ------------------------------------------------------------------ rollback
    def follow_plan(self, m: ModelConfig, incident_id: int, plan: AlertPlan, t: float) -> dict[str, Any] | None:
        """Run the rollback the guard allowed, or record why it refused one worth telling."""
        verdict = plan.rollback
        if verdict is None:
            return None
        if not verdict.allowed:
            # Only a critical incident blamed on a deploy makes a refusal worth telling people about.
            if plan.lifecycle.severity == Severity.CRITICAL and verdict.to_version:
                self._record_refusal(m, incident_id, verdict.to_version, verdict.reason, verdict.code,
                                     verdict.dry_run, t)
            return None
        if any(a.status == ActionStatus.REFUSED and a.detail == FLEET_CAP
               and verdict.from_version in (None, a.from_version)  # of the version it refused: a v3 since is asked
               for a in self.store.actions(incident_id=incident_id)):  # the cap's refusal stands: people decide
            return None
        facts = self.target_facts(m, t)
        if verdict.from_version is not None and facts.serving not in (None, verdict.from_version):
            # Someone moved the alias since the incident blamed a version (a revert, a fix
            # forward): their move stands; Vigil only ever moves away from what it blames.
            self._record_refusal(m, incident_id, verdict.to_version or "?",
                                 f"'{m.alias}' serves v{facts.serving} now, not v{verdict.from_version} that the "
                                 "incident blames: someone moved it since, and Vigil leaves it there",
                                 "moved", verdict.dry_run, t)
            return None
        choice = choose_target(facts)
        if choice.version is None:
            self._record_refusal(m, incident_id, verdict.to_version or "?", choice.reason, "no_target",
                                 verdict.dry_run, t)
            return None
        outcome = self.rollback(RollbackAsk(m, choice.version, f"automatic: incident {incident_id}: {verdict.reason}",
                                            AUTOMATIC, incident_id, t, dry_run=verdict.dry_run,
                                            max_attempts=self.config.policy_for(m).rollback.max_attempts,
                                            only_from=verdict.from_version, fleet_cap=self._fleet_cap()))
        if outcome.status == ActionStatus.REFUSED and outcome.detail.startswith(f"{FLEET_CAP}: "):
            self._record_refusal(m, incident_id, choice.version, outcome.detail.removeprefix(f"{FLEET_CAP}: "),
                                 "fleet_cap", verdict.dry_run, t, blamed=verdict.from_version)
        return {"status": outcome.status, "from_version": outcome.from_version, "to_version": outcome.to_version,
                "detail": outcome.detail}

    def _fleet_cap(self) -> FleetCap | None:
        """The top-level policy's: a model's own policy cannot set it (config_cross)."""
        r = self.config.policy.rollback
        return None if r.fleet_max is None else FleetCap(r.fleet_max, r.fleet_window)

    def _record_refusal(self, m: ModelConfig, incident_id: int, to_version: str, reason: str, code: str,
                        dry_run: bool, t: float, blamed: str | None = None) -> None:
        """Once per incident and guard (and `blamed` version when given: the fleet cap's stands
        for the version it refused): the reason's numbers (minutes since the last rollback, a
        confidence) change every cycle, the guard that said no does not."""
        detail = f"guard: {code}"
        earlier = self.store.actions(incident_id=incident_id)  # the runner's own refusal starts the same way
        if any(a.status == ActionStatus.REFUSED and (a.detail == detail or a.detail.startswith(f"{detail}:"))
               and (blamed is None or a.from_version == blamed) for a in earlier):
            return
        # read before the transaction: no registry call holds it open. `blamed` was just read serving
        # (the runner refuses a move from any other version first): stored, so the refusal sticks to it
        serving = blamed if blamed is not None else self._serving_now(m)
        with self.store.tx() as s:
            row = s.get(IncidentRow, incident_id)
            advised = self.outbox.advice(s, row) if row is not None else None
            self.store.add_action(s, model=m.name, kind="rollback", incident_id=incident_id, from_version=serving,
                                  to_version=to_version, status=ActionStatus.REFUSED, reason=reason, detail=detail,
                                  actor="vigil", dry_run=dry_run, at=t)
            # The cycle's message was written before this refusal. Edited only when the refusal
            # changes its advice (v3, released after Vigil rolled v2 back, refused by the
            # cool-down: "confirm the KPIs recover with v3"); a page that already says what to
            # do (rollback off, low confidence) is not edited right after it is sent.
            if row is not None and self.outbox.advice(s, row) != advised:
                RollbackTeller(self.outbox).update_incident(s, m, incident_id, t)
        self.metrics.rollbacks.labels(m.name, ActionStatus.REFUSED).inc()
        self.store.audit("vigil", "rollback.refused", f"model:{m.name}",
                         {"incident_id": incident_id, "reason": reason, "from_version": serving,
                          "to_version": to_version}, now=t)

    def _serving_now(self, m: ModelConfig) -> str | None:
        """The alias's version as a refusal is recorded (stored "from None" before, whatever
        served): read from the registry, None when it cannot be read, not the last version seen."""
        if self.registry is None:  # no registry to ask: what the cycle's poll last read
            with self.store.tx() as s:
                state = s.get(ModelStateRow, m.name)
                return state.alias_version if state is not None else None
        try:
            return self.registry.alias_version(m.registry, m.alias)
        except Exception as e:  # any failure of the read: the refusal is recorded all the same
            log.warning("alias unreadable while recording a refused rollback",
                        extra={"model": m.name, "error": f"{type(e).__name__}: {e}"})
            return None

    def rollback(self, ask: RollbackAsk) -> RollbackOutcome:
        """A rollback as a durable intent (monitor/cycle/rollback_intents.py)."""
        return self.runner.request(ask)

    def open_incident_id(self, model: str) -> int | None:
        """The incident a person's rollback answers when they name none (the API, `vigil
        rollback`): the model's newest open one, whose messages then show the rollback."""
        rows = self.store.incidents(model=model, status=IncidentStatus.OPEN, limit=1)
        return rows[0].id if rows else None

    def target_facts(self, m: ModelConfig, now: float) -> TargetFacts:
        facts = target_facts(self.store, m.name, self.config.policy_for(m).rollback, now)
        # A registry that cannot answer is no reason to pick another target: the rollback reports it.
        return facts if self.registry is None else without_deleted(
            facts, lambda v: missing_version(self.registry, m.registry, v) is None)

    def choose_target(self, m: ModelConfig, now: float, *, asked: str | None = None, force: bool = False,
                      force_reason: str = "") -> TargetChoice:
        return choose_target(self.target_facts(m, now), asked=asked, force=force, force_reason=force_reason)

    # ------------------------------------------------------------------ people
    def acknowledge(self, incident_id: int, actor: str, now: float, *, as_is: bool = False) -> IncidentRow:
        """Ack stops repeat reminders (not updates); the message shows who took it. The ack
        and its audit entry commit together: a kill -9 between them lost the entry.

        It covers the severity acknowledged: by default the one people were told (what the
        Slack message shows); `as_is` (the API, which shows the incident as it is) its own,
        so an escalation a silence holds, once told, does not lapse an ack given for it."""
        return retry_audited(lambda: self._acknowledge(incident_id, actor, now, as_is), "acknowledge an incident")

    def _acknowledge(self, incident_id: int, actor: str, now: float, as_is: bool) -> IncidentRow:
        with self.store.tx() as s:
            row = locked_row(s, IncidentRow, incident_id)  # two acks at once: the second sees the first
            assert row is not None
            check_actionable(row.status, incident_id, "acknowledged")
            if row.acknowledged_by is not None:  # a later ack changes nothing: the log names only who took it
                return row
            row.acknowledged_by = actor
            known = {x.name for x in self.config.models}
            # The messages people have: an escalation still held by a silence is not one.
            told = last_told(row.notified_digest, row.severity)
            row.acknowledged_severity = row.severity if as_is else str(told)
            # An edit: the channels that have its message, whatever the routes say now (a
            # reload may have moved them); a model no longer configured has no routes at all.
            channels = self.outbox.edit_channels(
                s, row, routes_of(self.config.model(row.model)).channels(told) if row.model in known else [])
            told_before = row.last_notified_at is not None  # muted since it opened: nothing to update
            if told_before and (channels or row.model in known):
                # held: only receivers that have it hear of the ack; it never pages a new one
                self.outbox.incident(s, row, channels, now, held=True, shown=told)
            elif told_before:  # its message is its group's: only a receiver that has it
                self.outbox.receivers_only(s, row, now)
            self.store.audit_in(s, actor, "incident.ack", f"incident:{incident_id}", {"model": row.model}, now=now)
        return row

    def silence(self, incident_id: int, actor: str, duration_s: float, reason: str, now: float) -> IncidentRow:
        """A silence keeps the incident open and recorded but stops notifications until it
        ends; an escalation to critical still gets through. Audited in the same transaction."""
        def once() -> IncidentRow:
            with self.store.tx() as s:
                row = locked_row(s, IncidentRow, incident_id)
                assert row is not None
                check_actionable(row.status, incident_id, "silenced")
                row.silenced_until = now + duration_s
                if row.notified_digest is None or _group_told_more(s, row):
                    # Never told on its own (its group paged for it, or a mute held it), or its
                    # escalation told by its group only (its own page held): the severity it
                    # is silenced at is what an escalation must get past, in its own page and
                    # in its group's (alerts.lifecycle.is_muted); else the group pages on.
                    row.notified_digest = told_digest(split_told(row.notified_digest)[0] or "", row.severity)
                self.store.audit_in(s, actor, "incident.silence", f"incident:{incident_id}",
                                    {"model": row.model, "until": now + duration_s, "reason": reason}, now=now)
            return row
        return retry_audited(once, "silence an incident")

    def slack_silence(self, row: IncidentRow, actor: str, now: float) -> str:
        """The Silence button: a silence of this model for 4 h at the severity people were
        last told (what the message shows), listed with the others (GET /v1/silences,
        `vigil silence list`) and expirable like them. An escalation changes the severity, so
        it still pages, even one not told yet (held by a maintenance window or an inhibition):
        the incident's own severity would mute the on-call's page nobody meant to mute."""
        check_actionable(row.status, row.id, "silenced")
        severity = last_told(row.notified_digest, row.severity)
        ask = SilenceAsk([f'model="{row.model}"', f'severity="{severity}"'],
                         f"from Slack on incident {row.id}", actor, duration=SLACK_SILENCE_S)
        # A double-click, or a second person pressing before the message updates, is a
        # second signed press: it gets the silence the first made, not another one that
        # would keep muting after the named one is expired. The incident's row lock
        # makes two presses at once (two workers, two replicas) run one after the other.
        made, new = create_silence_once(self.store, ask, actor, now,
                                        lambda s: locked_row(s, IncidentRow, row.id))
        if not new:
            return (f"Already silenced: {row.model} ({severity}) is muted by silence {made.id} until "
                    f"{wording.clock(made.ends_at, self.config.messages.time_zone)}. "
                    f"End it early with `vigil silence expire {made.id}` or DELETE /v1/silences/{made.id}.")
        return (f"Silenced {row.model} ({severity}) for 4 h: silence {made.id}. "
                f"End it early with `vigil silence expire {made.id}` or DELETE /v1/silences/{made.id}.")

    def slack_action(self, action: SlackAction, now: float) -> str:
        """A button in the incident message: ack, silence (4 h) or rollback (guarded, audited).
        The caller has checked that this person may (monitor/api/slack_desk.py)."""
        actor = action.actor
        row = self.store.incident(action.incident_id)
        if row is None or row.model != action.model:
            return f"Incident {action.incident_id} of {action.model} not found."
        try:
            if action.action_id == "ack":
                got = self.acknowledge(row.id, actor, now)
                if got.acknowledged_by != actor:  # someone pressed first: they have it, not this person
                    return (f"Incident {row.id} was already acknowledged by {escape(got.acknowledged_by)}; "
                            "nothing changed.")
                return f"Acknowledged incident {row.id}."
            if action.action_id == "silence":
                return self.slack_silence(row, actor, now)
            if action.action_id == "rollback":
                # A press on a copy of the message Slack had not updated yet: the incident is
                # over, so its button no longer stands for anything (the rollback API still does).
                check_actionable(row.status, row.id, "rolled back from Slack")
                return self._slack_rollback(row, actor, now, action.shown_move)
        except LifecycleConflict as e:
            return f"{e}."
        return f"Unknown action {action.action_id!r}."

    def _slack_rollback(self, row: IncidentRow, actor: str, now: float, shown: tuple[str, str] | None) -> str:
        """Exactly what the button said ("Roll back to v1", from the incident's top deploy
        cause): to that version, and only while the alias still serves the one it blames,
        so a second press, or a press after someone moved the alias, moves nothing."""
        m = self.config.model(row.model)
        versions = rollback_target({"causes": row.causes or []})
        if versions is None:
            return _no_button_move(row)
        current, previous = versions
        if shown is not None and shown != (current, previous):
            return (f"Nothing moved: this message's button said v{shown[0]} back to v{shown[1]}, but incident "
                    f"{row.id} now blames v{current} (back to v{previous}). Press the button of the updated message.")
        choice = self.choose_target(m, now, asked=previous)
        if choice.version is None:
            return f"No rollback: {choice.reason}. Use the rollback API with to_version."
        # The version the button names, blamed too and serving (a `stay`): nothing to move, said
        # as the rollback API says it (never "someone moved it since", nor a move to it unforced).
        outcome = self.rollback(RollbackAsk(m, choice.version, f"Slack button on incident {row.id}", actor,
                                            row.id, now, only_from=current, stay=choice.stay))
        said = choice.said(outcome.detail, outcome.status)
        if choice.stay and outcome.status == ActionStatus.REFUSED:  # a button cannot force: say what can
            said = said.replace(STAY_FORCE, (
                f"moving to it, blamed, takes force, which a button cannot give: `vigil rollback {m.name} --config "
                f"FILE --to-version {choice.version} --force --reason TEXT`, or POST /v1/models/{m.name}/rollback "
                f"with to_version {choice.version}, force=true and a reason"))
        return f"Rollback {outcome.status}: {said}"


def _no_button_move(row: IncidentRow) -> str:
    """Why a press moves nothing when the incident has no rollback for its button: the deploy it
    blames was replaced by a person since (the page says so: "no longer blames a deploy" would
    contradict it), or it blames none."""
    deploy = next((c for c in row.causes or [] if str(c.get("kind")) == "deploy"), None)
    now = (deploy.get("evidence") or {}).get("replaced_by") if deploy is not None else None
    if deploy is None or now is None:
        return (f"Incident {row.id} no longer blames a deploy, so this button has nothing to roll back; "
                f"use the rollback API with to_version.")
    blamed = (deploy.get("deploy") or {}).get("version")
    gone = f"Nothing moved: v{blamed} no longer serves (incident {row.id} blames its deploy)"
    if not (deploy.get("evidence") or {}).get("replaced_forward"):
        return f"{gone}: the alias went back to v{now} since, so there is nothing left to roll back."
    return (f"{gone}: v{now} took its place since, and a rollback now would take v{now} out. Use the rollback "
            "API with to_version if that is what you mean.")


def _group_told_more(s: Session, row: IncidentRow) -> bool:
    """Whether the incident's severity outranks the one its own page told while a shared
    cause that has paged speaks for it: the group told people of the escalation."""
    told = last_told(row.notified_digest, row.severity)
    return Severity(row.severity).rank > told.rank and groups.paged_for(s, row.model, row.id)
