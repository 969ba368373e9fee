"""Part of gather: the registry's alias, diffed against what Vigil last stored. A move
is a deploy event (MLflow keeps no alias history, so the diff is ours to keep)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from correlators.causes import older
from detectors.records import DeployEvent
from monitor.config import ModelConfig
from monitor.cycle.health import SourceHealth
from monitor.cycle.messages import OutboxWriter
from monitor.sources.registry import alias_record, detect_alias_move
from monitor.store.intents import forget_known_good, gave_up_moving, open_intents
from monitor.store.repository import ModelStateRow, Store

log = logging.getLogger("vigil.deploys")
Landed = Callable[[int, ModelConfig, float], object]  # (intent id, model, read at)


class DeployWatch:
    def __init__(self, registry: Any, health: SourceHealth, store: Store, outbox: OutboxWriter,
                 landed: Landed = lambda _intent, _m, _t: None) -> None:
        self.registry, self.health, self.store, self.outbox = registry, health, store, outbox
        self.landed = landed  # records the move of a rollback that gave up (monitor/cycle/rollback_landed.py)
        # model -> the latest poll that read the alias unchanged (this process's memory: after a
        # restart or a takeover a move is not known to be a response, and stays a suspect)
        self._confirmed: dict[str, float] = {}
        # model -> a poll since the last read failed (the registry was unreachable): a move seen
        # after it may have been made at any time since that read
        self._blind: set[str] = set()
        # models whose alias this process has read: until it has, it cannot know what the polls
        # since the last recorded read saw (a restart, a takeover from another replica), and a
        # move first read then is judged as one read after failed polls (`_blind`)
        self._read: set[str] = set()
        # model -> its last cycle by another process (one before a restart, the replica that
        # had it) when this process polled it next: a move this process had not read was made
        # after it (`_blind_move`'s window)
        self._started: dict[str, float] = {}
        self._polled: dict[str, float] = {}  # model -> this process's last poll of it
        self._missing: set[str] = set()  # models whose alias the registry lacks, said once

    def poll(self, m: ModelConfig, t: float, *, hold: bool = False,
             aliases: dict[str, str] | None = None) -> tuple[str | None, list[DeployEvent]]:
        """The serving version now, and deploy events for alias moves since the last poll.
        An unreachable registry leaves the last known version and no events. `hold`: a
        rollback of this model is in flight, so an alias move is (probably) its own and
        is left for the rollback to record when it finishes. `aliases`: the model's aliases
        as the sweep read them (monitor/cycle/prefetch.py), instead of asking again."""
        try:
            current = aliases.get(m.alias) if aliases is not None else self.registry.alias_version(m.registry, m.alias)
            self.health.mark("mlflow", True)
        except Exception as e:  # unreachable or rejecting, the registry is blind to us
            # a repeat already said (`SourceUnavailable.said`: a replay's unknown alias) at debug
            (log.debug if getattr(e, "said", False) else log.warning)(
                "registry poll failed", extra={"model": m.name, "error": str(e)})
            self.health.mark("mlflow", False, f"{type(e).__name__}: {e}")
            self._blind.add(m.name)
            return self._stored_version(m, t), []
        if hold:
            return self._stored_version(m, t), []
        try:
            events = self.record(m, current, t, unconfirmed=aliases is not None)
        except _RollbackInFlight as e:
            return e.serving, []
        except _RollbackLanded as e:
            self.landed(e.intent_id, m, t)
            self._confirmed[m.name] = t
            return self._stored_version(m, t), []
        if events is None:
            # The sweep read the alias before this cycle: a rollback that finished since (driven
            # by this cycle's reconcile, or by another replica) stored a move that read misses,
            # and its stale version would be recorded as a deploy back to it. Read it again.
            return self.poll(m, t)
        self._say_missing(m, current is None)
        return current, events

    def _stored_version(self, m: ModelConfig, t: float) -> str | None:
        with self.store.tx() as s:
            state = self.store.model_state(s, m.name)
            self._others_cycled(m.name, state.last_cycle_at, t)
            return state.alias_version

    def _others_cycled(self, name: str, last_cycle_at: float | None, t: float) -> float:
        """The model's last cycle by another process since this one last polled it (a
        restart, a takeover, also of a model this replica had before): what this process
        remembers of its reads is stale then, and the alias counts as unread (`_read`)."""
        cycled = last_cycle_at or 0.0
        if cycled > self._polled.get(name, -1.0):
            self._read.discard(name)
            self._confirmed.pop(name, None)
            self._started[name] = cycled
        self._polled[name] = max(t, self._polled.get(name, t))
        return self._started[name]

    def unseen(self, m: ModelConfig) -> list[str]:
        """The line `vigil status` and GET /v1/models show among the model's blind sources while
        the registry lacks its alias. Shown only: an alias never set must not hold every
        incident of the model open, as a blind signal does (the cycle's all clear)."""
        if not self.health.is_down(registry_source(m.name)):
            return []
        return [f"registry: MLflow has no registered model '{m.registry}' with an alias '{m.alias}' "
                "(deploys not tracked)"]

    def _say_missing(self, m: ModelConfig, missing: bool) -> None:
        """An alias the registry does not hold (a typo in `registry`, an alias never set or
        deleted) turns deploy tracking off: no deploy suspect, no rollback. Logged once per
        model, and shown as an unreachable source is, until the alias is back: `registry:<model>`
        down in /readyz and `vigil_source_up` (VigilSourceDown), no page. Only a model that
        lacked it has the entry: a fleet's found aliases are no lines in /readyz."""
        name = registry_source(m.name)
        if not missing:
            self._missing.discard(m.name)
            if name in self.health.states:
                self.health.mark(name, True)
            return
        self.health.mark(name, False, f"MLflow has no registered model '{m.registry}' with an alias '{m.alias}': "
                                      f"deploys of {m.name} are not tracked (no deploy suspect, no automatic "
                                      "rollback); fix `registry`/`alias` in the config or set the alias")
        if m.name not in self._missing:
            self._missing.add(m.name)
            log.warning("registry has no such model or alias: deploys are not tracked",
                        extra={"model": m.name, "registry": m.registry, "alias": m.alias})

    def record(self, m: ModelConfig, current: str | None, t: float, *, unconfirmed: bool = False
               ) -> list[DeployEvent] | None:
        """Diff the alias against the last state we stored; a move is a deploy event at `t`
        (or, read after polls failed or first by this process, when the registry dates it: `_blind_move`).
        `unconfirmed`: `current` may be stale (the sweep's early read), so a move is not
        recorded but answered None, for the caller to read the registry itself."""
        dated: Dated | None = None
        while True:
            with self.store.tx() as s:
                known = s.get(ModelStateRow, m.name)
                started = self._others_cycled(m.name, known.last_cycle_at if known else None, t)
                last = known.alias_version if known is not None and same_alias(known, m) else None
                # (a move this process reads first is judged as one read after failed polls: `_read`)
                blind = m.name in self._blind or m.name not in self._read
                blind_move = blind and last is not None and current != last and not unconfirmed
                if current is None or dated is not None or (last and not blind_move):
                    return self._record_in(s, m, current, t, dated, unconfirmed)
                since = max(self._confirmed.get(m.name, 0.0), (known.alias_seen_at if known else None) or 0.0,
                            started)
            # The registry is asked outside the transaction, which has written nothing yet:
            # SQLite's write lock (PostgreSQL: the lease row) would be held for the whole
            # call, and every other writer would wait for MLflow.
            dated = self._blind_move(m, current, since, t) if last else self._first_sight(m, current, t)

    def _record_in(self, s: Session, m: ModelConfig, current: str | None, t: float,
                   dated: Dated | None, unconfirmed: bool) -> list[DeployEvent] | None:
        state = self.store.model_state(s, m.name)
        # Another alias (or registered model) than the configured one: its version is no
        # "before" to diff against, and the configured alias is seen for the first time.
        last = state.alias_version if same_alias(state, m) else None
        if unconfirmed and last is not None and current != last:  # (a first sight has no move to miss)
            return None
        if last is not None and current != last and open_intents(s, m.name):
            # A rollback asked since `hold` was (from the CLI, the API, another replica) may
            # have moved the alias this read saw, its outcome not yet recorded; taken for
            # somebody's deploy, the next incident could blame it and roll the person's
            # rollback back. Its intent, committed before any move, says so. (Asked only on
            # a move: a poll that reads no move costs no query more.)
            raise _RollbackInFlight(last)
        if last is not None and current is not None and current != last:
            # A rollback that gave up (its call's answer lost, or another terminal's attempt
            # failing while this move landed) made this move: its record says failed, and as
            # somebody's deploy the version it left would be no rollback's any more. Only when
            # no read since it gave up found the alias unmoved: then the move is another's.
            read = self._confirmed.get(m.name, state.last_cycle_at or state.alias_seen_at or 0.0)
            intent_id = gave_up_moving(s, m.name, last, current, read)
            if intent_id is not None:
                raise _RollbackLanded(intent_id)
        if current is None or current == last:
            if current is not None and state.alias_of is None:  # a store from before: say whose it is
                state.alias_of = alias_of(m)
            self._confirmed[m.name] = t
            self._blind.discard(m.name)
            self._read.add(m.name)
            return []
        if last is None:
            self._read.add(m.name)
            # First sight of this model: MLflow keeps no alias history, so date it by the best
            # evidence the registry holds (_first_sight).
            at, source = (dated.at, dated.source) if dated is not None else (t, "observed")
            event: DeployEvent | None = DeployEvent(m.name, m.alias, current, None, at, source)
        else:
            event = detect_alias_move(model=m.name, alias=m.alias, last_known=last, current=current,
                                      at=dated.at if dated is not None else t)
            event = self._response(s, m, event, dated.made_after if dated is not None else None)
        if event is None:
            return []
        self.store.add_deploy(s, event)
        if state.alias_version is not None and not same_alias(state, m):
            forget_known_good(s, m.name)  # what served the old alias cleanly never served this one
        state.alias_version, state.alias_seen_at, state.alias_of = current, t, alias_of(m)
        if last is not None:  # a first sight is no news to announce (a restart, a new store)
            self.outbox.deploy(s, event, t)
        log.info("deploy observed", extra={"model": m.name, "version": current, "previous": last, "at": event.at})
        return [event]

    def _response(self, s: Any, m: ModelConfig, event: DeployEvent | None, made_after: float | None = None
                  ) -> DeployEvent | None:
        """A move the poll knows was made while an incident was open (an earlier poll after
        the incident opened still read the old version): a person answering the incident, a
        revert or a fix forward, never its cause (correlators.causes.deploy_suspects). So is a
        move back to an older version read after polls failed across the incident's opening:
        it may be the cause or a person's revert, and as a suspect an automatic rollback would
        undo the revert (bring the bad version back). A move forward stays a suspect
        (tests/integration/test_rollback_deploy_seen_late.py), unless the registry dates it
        (`made_after`: Vigil's record of it, or its version's registration) after the
        incident opened: a person's fix forward, made while Vigil could not read."""
        confirmed = self._confirmed.pop(m.name, None)
        blind = m.name in self._blind or m.name not in self._read  # failed polls, or none by this process
        blind_revert = blind and event is not None and older(event.version, event.previous_version)
        self._blind.discard(m.name)
        self._read.add(m.name)
        row = self.store.open_incident(s, m.name) if event is not None and (
            confirmed is not None or blind_revert or made_after is not None) else None
        if event is not None and row is not None and made_after is not None and made_after >= row.opened_at:
            return replace(event, source="response")
        if row is not None and confirmed is None:
            # Polls failed from the one right after the last recorded read (a start, a move):
            # that read (alias_seen_at) is the last the registry answered; it counts if the
            # unread window spans the incident's opening.
            seen = self.store.model_state(s, m.name).alias_seen_at
            confirmed = seen if seen is not None and seen < row.opened_at else None
        if event is None or row is None or confirmed is None or (confirmed < row.opened_at and not blind_revert):
            return event
        return replace(event, source="response")

    def _blind_move(self, m: ModelConfig, version: str, since: float, t: float) -> Dated:
        """When a move onto `version`, read at `t` after polls failed since the last read at
        `since`, was made, as the registry dates it (MLflow keeps no alias history, and a
        move read after a long outage dated `t` fell outside the onset's slack): Vigil's own
        record of it (`set_at`), else the version's registration, when inside (since, t];
        a record or registration before `since` is of an earlier move (stale). Else `t`.
        `made_after`: the move cannot be earlier (None: unknown)."""
        try:
            info = self.registry.get_version(m.registry, version)  # fresh: tags written since count
        except Exception:  # a missing time only loses precision: dated when seen, as before
            return Dated(t, "registry")
        born = float(info.created_at)
        record = alias_record(info, m.alias)
        if record is not None and max(since, born) < record.set_at <= t:
            return Dated(record.set_at, "registry", record.set_at)
        if since < born <= t:  # registered while Vigil could not read, then set on the alias
            return Dated(born, "registry", born)
        return Dated(t, "registry")

    def _first_sight(self, m: ModelConfig, version: str, t: float) -> Dated:
        """When the alias moved onto `version`, first seen at `t`, and the event's source.
        Vigil's own record of the move (`vigil.alias.<alias>.set_at`, written by a rollback or
        a replay, maybe by another Vigil or before a restart) is the real time; else the
        version's registration time (`created_at` prefers the `vigil.created_at` tag). Never
        before the version existed (a stale or skewed tag), never after the sighting.
        A record of Vigil's own rollback stays a rollback: dated now, as an "observed"
        deploy it would be a suspect, and the next incident would roll the rollback back.
        A record older than another version's record of the alias is stale (the alias left
        this version since, and came back by hand): dated no earlier than that one."""
        try:
            info = self.registry.get_version_cached(m.registry, version)
        except Exception:  # a missing time only loses cold-start precision
            return Dated(t, "observed")
        created = float(info.created_at)
        born = max(created, self._alias_left_at(m, version, t))
        record = alias_record(info, m.alias)
        at = record.set_at if record is not None and born <= record.set_at <= t else born
        # The alias executor tags a canary promotion "vigil-rollback" as well: only a move back
        # to an older version is a rollback; a move forward is a deploy, and can be blamed. A
        # stale record of a rollback still says so: the alias came back by hand (a revert), or
        # a later move's tags were written and the move failed; never a suspect either way.
        source = "rollback" if record is not None and created <= record.set_at <= t \
            and record.set_by == "vigil-rollback" and older(version, record.previous_version) else "observed"
        # Never after the sighting: the alias was seen serving it at `t`. A version the registry
        # dates later (MLflow's clock ahead of Vigil's, a replay behind a live registry) was
        # dated in the future, after deploys that came later, and its rollback target was lost.
        return Dated(min(at, t), source)

    def _alias_left_at(self, m: ModelConfig, version: str, t: float) -> float:
        """The latest move of the alias onto another version that Vigil recorded (up to
        `t`): the alias came to `version` after it. -inf when there is none (or no answer)."""
        try:
            versions = self.registry.list_versions(m.registry)
        except Exception:  # the registration time alone dates the first sight, as before
            return float("-inf")
        times = [r.set_at for r in (alias_record(v, m.alias) for v in versions if v.version != version)
                 if r is not None and r.set_at <= t]
        return max(times, default=float("-inf"))


@dataclass(frozen=True)
class Dated:
    """When the registry's evidence dates a move Vigil read late, and the event's source."""

    at: float
    source: str
    made_after: float | None = None  # the move was made no earlier than this (None: unknown)


def registry_source(model: str) -> str:
    """A model's entry among /readyz's sources while the registry lacks its alias."""
    return f"registry:{model}"


def alias_of(m: ModelConfig) -> str:
    """Which alias a model's stored `alias_version` was read from."""
    return f"{m.registry}@{m.alias}"


def same_alias(state: ModelStateRow, m: ModelConfig) -> bool:
    """Whether the stored version is the configured alias's (a store from before: taken so)."""
    return state.alias_of is None or state.alias_of == alias_of(m)


class _RollbackLanded(Exception):
    """A move read that a rollback recorded failed had made (`gave_up_moving`)."""

    def __init__(self, intent_id: int) -> None:
        super().__init__(intent_id)
        self.intent_id = intent_id


class _RollbackInFlight(Exception):
    """A move read while a rollback's intent is open: the rollback's to record, not a deploy."""

    def __init__(self, serving: str) -> None:
        super().__init__(serving)
        self.serving = serving
