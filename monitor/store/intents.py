"""Rollback intents and known-good versions: the tables that make a rollback crash-safe.

An intent is written (and committed) before anything moves: model, incident, from and
to version, the layers to move (executors), the fencing token of the replica that owns
the model. Acting, verifying and recording the outcome update the same row, so after a
crash at any line the row says what was meant and how far it got, and start-up (or the
next cycle) finishes it against what the registry and the serving layer say.

Known-good versions are recorded when a version serves a cycle cleanly (no open
incident, nothing blind); a default rollback goes back to the most recent of them.

Their tables are part of the baseline revision (monitor/store/migrations).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    false,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.rollback import AUTOMATIC, ActionStatus
from monitor.store.tables import ActionRow, Base, DeployRow, _status_column, locked_row

# States an intent moves through; only PENDING is unfinished.
OPEN_STATES = (ActionStatus.PENDING,)
# States the guard counts as a rollback (its cool-down and daily cap).
COUNTED_STATES = (ActionStatus.PENDING, ActionStatus.DONE)
# States the fleet's cap counts: every attempt Vigil made on its own (a failed one only if it
# may have moved a layer: `automatic_rollbacks_since`).
ATTEMPTED_STATES = (ActionStatus.PENDING, ActionStatus.DONE, ActionStatus.FAILED)
_FLEET_LOCK_KEY = 0x5669_6769_6C01  # "Vigil\1": one fleet count at a time, across replicas


class RollbackIntentRow(Base):
    __tablename__ = "rollback_intents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    action_id: Mapped[int | None] = mapped_column(Integer)  # the row shown in messages and the API
    from_version: Mapped[str | None] = mapped_column(String(40))
    to_version: Mapped[str] = mapped_column(String(40))
    executors: Mapped[list[Any]] = mapped_column(JSON)  # layer names, moved in this order
    steps_done: Mapped[list[Any]] = mapped_column(JSON, default=list)  # layers verified at to_version
    fencing_token: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[ActionStatus] = mapped_column(_status_column(ActionStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A person's request fails at its first unreachable layer (they are there to retry);
    # Vigil's own keeps trying for the policy's max_attempts cycles.
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    # When an attempt first found the layer being moved set to the target and its controller
    # still rolling it out: the settle wait counts from here, not from the request (a
    # rollback that first waited out an unreachable API server had only what was left).
    # Stored, so a restart or the replica taking over waits no less. None: not waiting.
    settling_since: Mapped[float | None] = mapped_column(Float)
    # Whether a failed attempt may have reached a layer's write (its answer lost): one that
    # failed reading, or refused, moved nothing, and a move the poll reads later is another's.
    may_have_moved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        Index("ix_rollback_intents_model_status", "model", "status"),
        # At most one rollback in flight per model, whichever replica or API call asks.
        Index("uq_rollback_intents_one_pending", "model", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )

    @property
    def key(self) -> str:
        """The idempotency key every layer sees for this intent, across retries and replicas.
        The id alone repeats across stores (a new SQLite file, a move to PostgreSQL, staging
        beside production), and a receiver would replay an old answer instead of acting:
        the time it was recorded (ms) makes it unique to this intent."""
        return f"vigil-rollback-{self.id}-{round(self.created_at * 1000)}"


class KnownGoodRow(Base):
    __tablename__ = "known_good_versions"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    clean_cycles: Mapped[int] = mapped_column(Integer, default=0)
    first_clean_at: Mapped[float] = mapped_column(Float)
    last_clean_at: Mapped[float] = mapped_column(Float)


def add_intent(s: Session, **fields: Any) -> RollbackIntentRow:
    row = RollbackIntentRow(status=ActionStatus.PENDING, attempts=0, steps_done=[], detail="", may_have_moved=False,
                            **fields)
    s.add(row)
    s.flush()
    return row


def locked_intent(s: Session, intent_id: int) -> RollbackIntentRow | None:
    """The intent, row-locked until the transaction ends (`locked_row`), so two replicas (or
    the API and a cycle) finishing it at once cannot both record an outcome."""
    return locked_row(s, RollbackIntentRow, intent_id)


def record_step(s: Session, intent_id: int, layer: str, now: float, done: bool | None) -> None:
    """A pending intent's `layer`: `done`, verified at the target; False, left alone (somebody
    moved it elsewhere: not set to the target either); None, set to the target and not yet
    verified (`settling_since`: its wait to take effect starts at the first attempt that set it,
    whether or not the read that follows is answered)."""
    intent = locked_intent(s, intent_id)
    if intent is None or intent.status != ActionStatus.PENDING or layer in intent.steps_done:
        return
    if done is None:
        intent.settling_since = now if intent.settling_since is None else intent.settling_since
        return
    intent.steps_done = [*intent.steps_done, layer] if done else intent.steps_done
    intent.updated_at, intent.settling_since = now, None


def read_unmoved(s: Session, intent_id: int) -> None:
    """A pending intent whose first layer was just read at `from` (nothing set yet): an earlier
    attempt whose answer was lost (a 503) did not move it after all. Cleared before the intent
    is ended cancelled or abandoned, so a move read later (a person's revert by hand, as its
    message advises) is theirs, not announced as this rollback done (`gave_up_moving`)."""
    intent = locked_intent(s, intent_id)
    if intent is not None and intent.status == ActionStatus.PENDING and not intent.steps_done:
        intent.may_have_moved = False


def open_intents(s: Session, model: str | None = None) -> list[RollbackIntentRow]:
    q = select(RollbackIntentRow).where(RollbackIntentRow.status.in_(OPEN_STATES))
    if model is not None:
        q = q.where(RollbackIntentRow.model == model)
    return list(s.scalars(q.order_by(RollbackIntentRow.id)))


def latest_intent_id(s: Session, model: str) -> int:
    """The newest intent's id for `model` (0: none yet): a later one was recorded since."""
    return s.scalar(select(func.max(RollbackIntentRow.id)).where(RollbackIntentRow.model == model)) or 0


def finished_since(s: Session, model: str, after_id: int) -> list[RollbackIntentRow]:
    """The intents for `model` recorded after `after_id` and finished already, newest first."""
    q = (select(RollbackIntentRow).where(RollbackIntentRow.model == model, RollbackIntentRow.id > after_id,
                                         RollbackIntentRow.status.not_in(OPEN_STATES))
         .order_by(RollbackIntentRow.id.desc()))
    return list(s.scalars(q))


def intents_for_incident(s: Session, incident_id: int) -> list[RollbackIntentRow]:
    q = select(RollbackIntentRow).where(RollbackIntentRow.incident_id == incident_id)
    return list(s.scalars(q.order_by(RollbackIntentRow.id)))


# A canary's pull or promotion is not a rollback of the champion: it uses up no cool-down.
_ROLLBACKS_ONLY = or_(ActionRow.kind.is_(None), ActionRow.kind == "rollback")
# What a move blames: a rollback blames the version it left, a canary pull the challenger
# it pulled; a promotion blames nothing it replaced.
_MOVES_AWAY = or_(ActionRow.kind.is_(None), ActionRow.kind.in_(("rollback", "canary_pull")))


def counted_times(s: Session, model: str) -> list[float]:
    """When this model's rollbacks were asked for: pending ones count, so a rollback
    whose outcome a crash left unrecorded still uses up the cool-down and the cap."""
    q = (select(RollbackIntentRow.created_at)
         .outerjoin(ActionRow, ActionRow.id == RollbackIntentRow.action_id)
         .where(RollbackIntentRow.model == model, RollbackIntentRow.status.in_(COUNTED_STATES), _ROLLBACKS_ONLY))
    return list(s.scalars(q))


def automatic_rollbacks_since(s: Session, since: float) -> list[str]:
    """The models of Vigil's own rollbacks asked since `since` (pending, done, or failed once
    it may have moved a layer: an attempt counts; one that moved nothing, cancelled or
    abandoned, does not: it would refuse another model's rollback for that incident), across
    the fleet, oldest first: what the fleet's cap counts. It first takes a lock held until the
    caller commits, so two counting at once (replicas, or one daemon's sweep workers) count
    one after the other: the second sees the intent the first let through, and the cap is
    never passed by one each. On PostgreSQL a transaction's advisory lock; on SQLite its
    write lock (BEGIN IMMEDIATE): pysqlite begins a transaction only at the first write, so
    the count read outside any."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FLEET_LOCK_KEY})
    elif dialect == "sqlite":
        raw: Any = s.connection().connection.dbapi_connection
        if not raw.in_transaction:  # (one that wrote already holds the write lock)
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")  # waits (busy_timeout, 10 s) for another writer
    q = (select(RollbackIntentRow)
         .outerjoin(ActionRow, ActionRow.id == RollbackIntentRow.action_id)
         .where(RollbackIntentRow.actor == AUTOMATIC, RollbackIntentRow.created_at >= since,
                RollbackIntentRow.status.in_(ATTEMPTED_STATES), _ROLLBACKS_ONLY)
         .order_by(RollbackIntentRow.created_at, RollbackIntentRow.id))
    # (steps_done is JSON: whether it is empty is asked here, alike in SQLite and PostgreSQL)
    return [x.model for x in s.scalars(q) if x.status != ActionStatus.FAILED or _may_have_moved(x)]


def _may_have_moved(intent: RollbackIntentRow) -> bool:
    return intent.may_have_moved or bool(intent.steps_done) or intent.settling_since is not None


def rolled_back_from(s: Session, model: str, since: float) -> list[tuple[int, str]]:
    """(intent id, version) for each version a rollback moved away from since `since`."""
    q = (select(RollbackIntentRow.id, RollbackIntentRow.from_version)
         .outerjoin(ActionRow, ActionRow.id == RollbackIntentRow.action_id)
         .where(RollbackIntentRow.model == model, RollbackIntentRow.status.in_(COUNTED_STATES),
                RollbackIntentRow.created_at >= since, RollbackIntentRow.from_version.is_not(None),
                _MOVES_AWAY))
    return [(i, str(v)) for i, v in s.execute(q)]


def gave_up_moving(s: Session, model: str, from_version: str, to_version: str, since: float) -> int | None:
    """The latest rollback from `from_version` to `to_version` recorded failed after `since`
    once an attempt may have reached a layer's write (whether it acted is unknown: its answer
    lost), or once its alias had moved (a step verified: it left a later layer somebody
    moved). One whose attempts all failed reading (MLflow down) moved nothing: a revert by
    hand to its target is the person's.
    One asked at `since` counts too: a cycle asks after its poll, and one that failed at
    once was recorded at the very time of the read that preceded it."""
    q = (select(RollbackIntentRow.id, RollbackIntentRow.may_have_moved, RollbackIntentRow.steps_done)
         .outerjoin(ActionRow, ActionRow.id == RollbackIntentRow.action_id)
         .where(RollbackIntentRow.model == model, RollbackIntentRow.status == ActionStatus.FAILED,
                RollbackIntentRow.from_version == from_version, RollbackIntentRow.to_version == to_version,
                _ROLLBACKS_ONLY, or_(RollbackIntentRow.updated_at > since, RollbackIntentRow.created_at >= since))
         .order_by(RollbackIntentRow.id.desc()))
    # (steps_done is JSON: whether it is empty is asked here, alike in SQLite and PostgreSQL)
    return next((i for i, may_have_moved, steps in s.execute(q) if may_have_moved or steps), None)


def has_served(s: Session, model: str, version: str) -> bool:
    """Whether `version` served this model before: a deploy took it or replaced it, or it ran clean cycles."""
    deployed = s.scalar(select(DeployRow.id).where(
        DeployRow.model == model, or_(DeployRow.version == version, DeployRow.previous_version == version)).limit(1))
    return deployed is not None or s.get(KnownGoodRow, (model, version)) is not None


def mark_clean(s: Session, model: str, version: str, now: float) -> None:
    row = s.get(KnownGoodRow, (model, version))
    if row is None:
        s.add(KnownGoodRow(model=model, version=version, clean_cycles=1, first_clean_at=now, last_clean_at=now))
    else:
        row.clean_cycles += 1
        row.last_clean_at = max(row.last_clean_at, now)


def known_good(s: Session, model: str, min_cycles: int) -> list[str]:
    """Versions that served at least `min_cycles` clean cycles, most recently clean first."""
    q = select(KnownGoodRow.version).where(KnownGoodRow.model == model, KnownGoodRow.clean_cycles >= min_cycles)
    return list(s.scalars(q.order_by(KnownGoodRow.last_clean_at.desc())))


def forget_known_good(s: Session, model: str) -> None:
    """The configuration names another alias (or registered model) for `model`: the versions
    that served the old one cleanly are no rollback targets of the new one."""
    s.execute(delete(KnownGoodRow).where(KnownGoodRow.model == model))
