"""What a rollback (or a canary's action) is asked to do, and the shapes its outcome takes:
the plain data the durable intents (monitor/cycle/rollback_intents.py) work on."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from alerts.rollback import ActionStatus, RollbackOutcome
from monitor.config import ModelConfig
from monitor.executors.base import SETTLING, Executor, ExecutorError, RollbackStep
from monitor.sources.registry import ModelNotFound
from monitor.store.intents import RollbackIntentRow, automatic_rollbacks_since, finished_since
from monitor.store.repository import ActionRow

ROLLBACK, CANARY_PULL, CANARY_PROMOTE = "rollback", "canary_pull", "canary_promote"
PROMOTION = "promotion"  # what a rollback to a version that never served turns out to be, once done
MOVED = "guard: moved"  # the detail of a refusal because the alias no longer serves what was blamed
FLEET_CAP = "guard: fleet_cap"  # the detail of a refusal because the fleet's cap was reached
STAY_FORCE = "moving to it, blamed, needs force"  # a refused `stay`: what the API and the CLI can give
# The audit log's names for each kind's events: rollback.requested, canary.pull.done, ...
AUDIT = {ROLLBACK: "rollback", CANARY_PULL: "canary.pull", CANARY_PROMOTE: "canary.promote"}


@dataclass(frozen=True)
class FleetCap:
    """At most `most` of Vigil's own rollbacks across the fleet in `window_s` seconds."""

    most: int
    window_s: float

    def reached(self, s: Session, now: float) -> str:
        """Why the cap refuses another rollback now ("" when it does not), counted in the
        transaction that would record it (see `automatic_rollbacks_since`)."""
        models = automatic_rollbacks_since(s, now - self.window_s)
        if len(models) < self.most:
            return ""
        named = list(dict.fromkeys(reversed(models)))  # newest first, each model once
        shown = ", ".join(named[:10]) + (f" and {len(named) - 10} more" if len(named) > 10 else "")
        return (f"fleet cap: {len(models)} automatic rollbacks across the fleet in the last "
                f"{self.window_s / 60:.0f} min ({shown}) >= fleet_max {self.most}: one shared cause is likelier "
                "than that many bad deploys; roll this one back by hand if its deploy is to blame")


@dataclass(frozen=True)
class RollbackAsk:
    """One rollback asked for, by Vigil's guard or by a person."""

    model: ModelConfig
    to_version: str
    reason: str
    actor: str
    incident_id: int | None
    now: float
    dry_run: bool = False
    forced: bool = False
    # Cycles to keep trying an unreachable layer: Vigil's own rollbacks use the policy's
    # max_attempts; a person's fails at once (1), unless a layer has already moved.
    max_attempts: int = 1
    kind: str = ROLLBACK  # rollback | canary_pull | canary_promote
    # What the first layer is expected to serve when it cannot be read (default: the
    # champion alias's last seen version; a pull names the challenger's).
    from_version: str | None = None
    # Move only a first layer that serves this version (the one the incident blames, the
    # one a button showed); serving another, someone moved it since: refused, nothing moves.
    only_from: str | None = None
    # Run in the transaction that records the intent (the API stores its Idempotency-Key
    # answer there), so a crash cannot leave a rollback without the answer pointing at it.
    on_recorded: Callable[[Session, RollbackIntentRow], None] | None = None
    fleet_cap: FleetCap | None = None  # Vigil's own rollbacks only; a person's is never capped
    # Asked for the blamed version serving (TargetChoice.stay): a noop when every layer serves
    # it; else refused, never a move (that would be a move to a blamed version without force).
    stay: bool = False

    def stay_refused(self, layers: list[Executor], serving: str | None) -> RollbackOutcome:
        """Why a `stay` ask moved nothing: a layer serves another version (refused), or the
        alias serves it and a layer could not be read (failed: nothing says another serves)."""
        if serving == self.to_version:
            return RollbackOutcome(ActionStatus.FAILED, serving, self.to_version,
                                   f"{names(layers)} cannot be read to confirm v{serving} serves")
        return RollbackOutcome(ActionStatus.REFUSED, serving, self.to_version,
                               f"{names(layers)} serve v{serving}, not v{self.to_version}: {STAY_FORCE}; nothing moved")


def intent_kind(s: Session, intent: RollbackIntentRow) -> str:
    """What the intent does, from its action row (rollback when it has none)."""
    action = s.get(ActionRow, intent.action_id) if intent.action_id else None
    return action.kind if action is not None else ROLLBACK


def landed_after_all(s: Session, intent: RollbackIntentRow, status: ActionStatus) -> bool:
    """Whether a rollback recorded failed is done after all: a later read finds it made (every
    layer verified at the target by another driver, or the alias read there by the next poll
    after an attempt whose answer was lost). Only a rollback: a canary's failed action
    reopened its run, and its next analysis reads where the aliases are."""
    return status == ActionStatus.DONE and intent.status == ActionStatus.FAILED and intent_kind(s, intent) == ROLLBACK


def finished_first(s: Session, model: str, seen: int, to_version: str, kind: str = ROLLBACK
                   ) -> RollbackOutcome | None:
    """The answer to an ask of `kind` when another action on the same alias (a rollback or a
    promotion of the champion; a pull of the challenger) was recorded after intent `seen`, read
    as the ask began, and finished before the ask was recorded (two people pressing at once):
    that one's outcome, named, rather than a second rollback that moves nothing and says it
    did. Done at the version asked: done; else refused, nothing moved for this ask. None: no
    such action. A pull moves the challenger, so it never answers a rollback of the champion
    (nor the reverse): it did, "done" while the champion still served the bad version."""
    pulls = kind == CANARY_PULL
    other = next((i for i in finished_since(s, model, seen) if (intent_kind(s, i) == CANARY_PULL) == pulls), None)
    if other is None:
        return None
    what = (f"{intent_kind(s, other).replace('_', ' ')} {other.id} by {other.actor} "
            f"(v{other.from_version} -> v{other.to_version}), asked at the same time,")
    if other.status == ActionStatus.DONE and other.to_version == to_version:
        return RollbackOutcome(ActionStatus.DONE, other.from_version, other.to_version,
                               f"{what} finished first: {other.detail}", other.id)
    return RollbackOutcome(ActionStatus.REFUSED, other.from_version, to_version,
                           f"{what} ended {other.status} first: {other.detail}; nothing moved for this request: "
                           "ask again to see where the model is", other.id)


def rolling_out(intent: RollbackIntentRow) -> str | None:
    """The layer an attempt set to the target whose controller was still rolling it out
    (`settling_since`, cleared once a layer is verified): layers move in order, so the first
    not done. It changed production though not verified: a KServe spec at the target."""
    if intent.settling_since is None:
        return None
    return next((x for x in intent.executors if x not in intent.steps_done), None)


def moved_refusal(alias: str, serving: str | None, expected: str) -> str:
    """Why an ask expecting `alias` at `expected` moved nothing. Read as absent (a pipeline's
    delete then set, a failover's answer) is no licence to move: it is refused too."""
    if serving is None:
        return f"{MOVED}: '{alias}' could not be read as v{expected} (it reads as absent); nothing moved"
    return (f"{MOVED}: '{alias}' serves v{serving}, not v{expected} as when this was asked: someone moved it "
            "since; nothing moved")


def superseded(layer: Executor, step: RollbackStep) -> str:
    """Why a rollback left `layer` alone: somebody moved it to a third version since. Its wait
    to take effect ends with it (`settling_since` cleared): it is not set to the target."""
    was = f"v{step.from_version}" if step.from_version is not None else "absent (as read when asked)"
    return (f"{layer.name} serves v{layer.current(step)}, neither {was} nor v{step.to_version}: "
            "somebody moved it since; left alone")


def moved_layers(intent: RollbackIntentRow) -> list[str]:
    """The layers a rollback that ended short of done left set to its target (`moved`)."""
    setting = rolling_out(intent)
    return [*intent.steps_done, *([setting] if setting else [])]


def half_moved(intent: RollbackIntentRow) -> str:
    """What a failed rollback had moved already: read as "nothing moved", a half-moved model
    (its alias at the target, its serving layer not) is left so, or moved by hand wrongly.
    A layer set and still rolling out is not "still on" the old version: moving only the
    alias back would leave the registry and the serving on different versions."""
    setting = rolling_out(intent)
    if not intent.steps_done and setting is None:
        return ""
    left = [x for x in intent.executors if x not in intent.steps_done and x != setting]
    said = [f"already moved to v{intent.to_version}: {', '.join(intent.steps_done)}"] if intent.steps_done else []
    said += [f"set to v{intent.to_version}, not yet in effect: {setting}"] if setting else []
    said += [f"still on v{intent.from_version}: {', '.join(left)}"] if left else []
    return f"; {'; '.join(said)} (ask again to finish it, or move the moved ones back)"


def audited(intent: RollbackIntentRow) -> dict[str, Any]:
    """What the audit log keeps of an intent."""
    return {"intent_id": intent.id, "incident_id": intent.incident_id, "from_version": intent.from_version,
            "to_version": intent.to_version, "executors": intent.executors, "reason": intent.reason,
            "forced": intent.forced, "fencing_token": intent.fencing_token}


def names(layers: list[Executor]) -> str:
    return " + ".join(x.name for x in layers)


def outcome_of(intent: RollbackIntentRow) -> RollbackOutcome:
    return RollbackOutcome(intent.status, intent.from_version, intent.to_version, intent.detail, intent.id)


def payload(m: ModelConfig, from_version: str | None, to_version: str, status: ActionStatus, ask: RollbackAsk,
            detail: str, moved: list[str] | None = None) -> dict[str, Any]:
    """`moved`: the layers it left serving `to_version` (a failure that moved none is no change to production)."""
    kind = {} if ask.kind == ROLLBACK else {"kind": ask.kind}  # a rollback's payload is as it always was
    return {**kind, "model": m.name, "from_version": from_version, "to_version": to_version, "at": ask.now,
            "status": status, "reason": ask.reason, "dry_run": ask.dry_run, "actor": ask.actor, "detail": detail,
            "incident_id": ask.incident_id, "moved": list(moved or [])}


def missing_version(registry: Any, registry_name: str, version: str) -> str | None:
    """Why `version` cannot be rolled back to, if the registry says it does not exist (the
    API and `vigil rollback` both ask). A registry that cannot answer is left to the
    rollback, which reports it (502)."""
    try:
        registry.get_version(registry_name, version)
    except ModelNotFound as e:
        return str(e)
    except Exception:  # unreachable registry: not the caller's mistake, and the rollback will say so
        return None
    return None


HALF_WAY_ATTEMPTS = 10  # cycles a rollback keeps trying once some layer has moved
# How long a layer set to the target may take to take effect before the rollback fails,
# counted from when it was set (`waited`): past Kubernetes' default progressDeadlineSeconds
# (600 s), which Argo Rollouts shares.
SETTLE_S = 900.0
WAITING, NO_NEWS = "waiting for it to take effect", ("unavailable", "deadline")  # an action's detail; unheard-from


@dataclass(frozen=True)
class AttemptVerdict:
    gave_up: str | None  # the failed outcome's detail, or None: try again next cycle
    retrying: str  # the action's detail meanwhile


def was_waiting(action: ActionRow | None) -> bool:
    """Whether the action's last attempt found its layer rolling out (`judge_attempt`)."""
    return action is not None and (action.detail or "").startswith(WAITING)


def judge(intent: RollbackIntentRow, action: ActionRow | None, e: ExecutorError, now: float) -> AttemptVerdict:
    """`judge_attempt` for the intent's latest failed attempt (already counted in `attempts`).
    A layer set (`settling_since`, recorded once its set call succeeded) whose read then got no
    answer is waited for like one found rolling out: the 503 is no news of the rollout."""
    waiting = was_waiting(action) or intent.settling_since is not None
    intent.may_have_moved = intent.may_have_moved or not e.unmoved  # kept with the attempt it counts
    return judge_attempt(intent.attempts, intent.max_attempts, bool(intent.steps_done),
                         waited(intent, e, now, waiting), e, was_waiting=waiting)


def waited(intent: RollbackIntentRow, e: ExecutorError, now: float, was_waiting: bool = False) -> float:
    """How long the intent has waited for its layer to take effect: from the attempt that set it
    (stored, so a restart or another replica waits no less), not from the request, which may
    have spent most of the wait reaching the layer (a lease, an unreachable API server). An
    intent pending at the upgrade that stored it (migration 0010) starts the wait at its first
    attempt after it that finds the layer rolling out, or gets no answer where the last one
    found it so (`was_waiting`): up to 15 minutes more, never less."""
    if intent.settling_since is None and (e.reason == SETTLING or (e.reason in NO_NEWS and was_waiting)):
        intent.settling_since = now  # set, found so now or by the attempt before: the wait starts
    return now - (intent.created_at if intent.settling_since is None else intent.settling_since)


def judge_attempt(attempts: int, max_attempts: int, half_moved: bool, age_s: float,
                  e: ExecutorError, *, was_waiting: bool = False) -> AttemptVerdict:
    """After a failed attempt (`attempts` counts it), give up or try again. Once a layer has
    moved, stopping half-way helps no one: at least HALF_WAY_ATTEMPTS. A layer set to the
    target whose controller is still rolling it out is waited for by time, not by cycles: at
    a 30 s interval ten cycles failed a healthy rollout; and through reads it does not answer
    meanwhile (`was_waiting`: a 503 is no news of the rollout). `age_s`: how long the layer has
    been set (`waited`)."""
    limit = max(max_attempts, HALF_WAY_ATTEMPTS) if half_moved else max_attempts
    settling = e.reason == SETTLING or (e.reason in NO_NEWS and was_waiting)
    if not e.retryable or (attempts >= limit and not (settling and age_s < SETTLE_S)):
        tried = f" after {attempts} attempts" if e.retryable and limit > 1 else ""
        tried += f" and {age_s / 60:.0f} min" if settling else ""
        return AttemptVerdict(f"gave up{tried}: {e.detail}", "")
    if settling:
        return AttemptVerdict(None, f"{WAITING} (attempt {attempts}; up to "
                                    f"{SETTLE_S / 60:.0f} min or {limit} attempts, whichever is longer): {e.detail}")
    return AttemptVerdict(None, f"retrying (attempt {attempts} of {limit}): {e.detail}")
