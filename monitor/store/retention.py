"""The purge job: deletes what `retention:` lets go, kind by kind, in bounded batches.

- samples older than `retention.samples` (by their own timestamp), except those a model's
  `performance:` still reads: its `horizon` (labels may still land) and its reference period,
  and those its rolling drift reference (`policy.rolling_reference`) reads;
- labels older than `retention.samples` and the model's `horizon`, except those of its
  reference period's predictions, which its refit reads (monitor/store/retention_labels.py);
- drift reports rendered before `retention.drift_reports`;
- incidents resolved before `retention.resolved_incidents`, with their drift report and
  their messages' refs; their actions and rollback intents stay, unlinked (`incident_id` NULL);
- outbox rows delivered (or suppressed by a silence at send time) before
  `retention.delivered_outbox` (pending, sending and failed
  rows are never purged: they are work still to do or still to look at);
- Idempotency-Key answers once they no longer answer retries (24 h), always.

The audit log is never purged: its hash chain runs from seq 1 and its signed checkpoints
vouch for all of it. Each batch is its own transaction, so the daemon's cycles never
wait long behind a purge, and a purge cut short just leaves the rest for the next run.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import ColumnElement, Select, and_, delete, func, not_, or_, select, true, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from alerts.lifecycle import IncidentStatus
from alerts.outbox import OutboxStatus
from monitor.config import ModelConfig, VigilConfig
from monitor.config_retention import DAY, RetentionConfig
from monitor.store.groups import GroupMemberRow
from monitor.store.idempotency import IDEMPOTENCY_TTL_S
from monitor.store.intents import RollbackIntentRow
from monitor.store.repository import (
    ActionRow,
    DriftReportRow,
    IdempotencyRow,
    IncidentRow,
    MessageRefRow,
    OutboxRow,
    SampleRow,
    Store,
)
from monitor.store.retention_labels import purge_labels

log = logging.getLogger("vigil.retention")


@dataclass
class PurgeResult:
    samples: int = 0
    labels: int = 0
    drift_reports: int = 0
    resolved_incidents: int = 0
    delivered_outbox: int = 0
    idempotency_keys: int = 0
    audit_head_seq: int = 0  # kept whole: the audit log is never purged

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def purge(store: Store, retention: RetentionConfig, now: float, *, dry_run: bool = False,
          models: Sequence[ModelConfig] = (), config: VigilConfig | None = None) -> PurgeResult:
    """Delete (or, `dry_run`, count) every row past its kind's retention at time `now`;
    `models` (the config's, or `config`'s) say which samples their performance stage still
    reads, `config` also how far back their rolling drift reference reads."""
    out = PurgeResult(audit_head_seq=store.audit_head().seq)
    batch = retention.batch_rows
    models = config.models if config is not None else models
    if retention.samples is not None:
        by_name = {m.name: m for m in models}
        for model in _sample_models(store):  # per model: the (model, ts) index answers each batch
            m = by_name.get(model)
            kept = max(retention.samples, _rolling_reach(config, m) if config is not None and m else 0.0)
            q = select(SampleRow.id).where(SampleRow.model == model, _past_retention(m, now, kept))
            out.samples += _delete(store, q, SampleRow.id, batch, dry_run)
        out.labels = purge_labels(store, models, now, retention.samples, batch, dry_run)
    if retention.drift_reports is not None:
        q = select(DriftReportRow.incident_id).where(DriftReportRow.created_at < now - retention.drift_reports)
        out.drift_reports = _delete(store, q, DriftReportRow.incident_id, batch, dry_run)
    if retention.resolved_incidents is not None:
        out.resolved_incidents = _purge_incidents(store, now - retention.resolved_incidents, batch, dry_run)
    if retention.delivered_outbox is not None:
        cut = now - retention.delivered_outbox
        # a row a silence held back at send time is settled as one delivered, from when it was held
        q = select(OutboxRow.id).where(or_(
            (OutboxRow.status == OutboxStatus.DELIVERED) & (OutboxRow.delivered_at < cut),
            (OutboxRow.status == OutboxStatus.SUPPRESSED) & (OutboxRow.next_attempt_at < cut)))
        out.delivered_outbox = _delete(store, q, OutboxRow.id, batch, dry_run)
    out.idempotency_keys = _purge_idempotency_keys(store, now, batch, dry_run)
    if not dry_run and any((out.samples, out.labels, out.drift_reports, out.resolved_incidents, out.delivered_outbox,
                            out.idempotency_keys)):
        log.info("purged past retention", extra=out.as_dict())
    return out


def _purge_idempotency_keys(store: Store, now: float, batch: int, dry_run: bool) -> int:
    """Answers past IDEMPOTENCY_TTL_S answer no retry (the API ignores them): one keyed samples
    batch a minute per model would otherwise keep 1,440 rows a model a day for ever."""
    old = IdempotencyRow.created_at < now - IDEMPOTENCY_TTL_S
    with store.tx() as s:
        if dry_run:
            return int(s.scalar(select(func.count()).select_from(IdempotencyRow).where(old)) or 0)
    done = 0
    while True:  # bounded batches, as the other kinds: a first purge never holds a long lock
        with store.tx() as s:
            keys = s.execute(select(IdempotencyRow.key, IdempotencyRow.scope).where(old).limit(batch)).all()
            if keys:
                s.execute(delete(IdempotencyRow).where(
                    tuple_(IdempotencyRow.key, IdempotencyRow.scope).in_([tuple(k) for k in keys])))
        done += len(keys)
        if len(keys) < batch:
            return done


def _rolling_reach(config: VigilConfig, m: ModelConfig) -> float:
    """How far back a rolling drift reference reads samples: `rolling_reference` before the
    day the window starts in (monitor/cycle/reference.py). Purged sooner, a 20-day rolling
    reference was built from the 14 days of samples left, a reference nobody configured."""
    p = config.policy_for(m)
    if p.reference_after_cold_start != "rolling":
        return 0.0
    return p.rolling_reference + config.schedule.lookback + DAY


def _past_retention(m: ModelConfig | None, now: float, kept: float) -> ColumnElement[bool]:
    """Samples older than `kept`, but not those the model's performance stage still reads:
    the predictions of its horizon (their labels may land up to `horizon` late) and of its
    reference period (refitted once a window). Purged, the reference read "0 labelled
    predictions" two weeks after set-up and the model's performance went blind for good."""
    perf = m.performance if m is not None else None
    if perf is None:
        return SampleRow.ts < now - kept
    period = perf.reference.period()
    keep_ref = SampleRow.ts.between(*period) if period is not None else None
    return and_(SampleRow.ts < now - max(kept, perf.horizon), not_(keep_ref) if keep_ref is not None else true())


def _sample_models(store: Store) -> list[str]:
    with store.tx() as s:
        return list(s.scalars(select(SampleRow.model).distinct()))


def _delete(store: Store, ids: Select[int], key: InstrumentedAttribute[int], batch: int,
            dry_run: bool) -> int:
    """Delete the rows whose `key` the query selects, `batch` at a time; how many."""
    total = 0
    while True:
        with store.tx() as s:
            if dry_run:
                return _count(s, ids)
            chosen = list(s.scalars(ids.limit(batch)))
            if chosen:
                s.execute(delete(key.class_).where(key.in_(chosen)))
        total += len(chosen)
        if len(chosen) < batch:
            return total


def _count(s: Session, ids: Select[int]) -> int:
    return int(s.scalar(select(func.count()).select_from(ids.subquery())) or 0)


def _purge_incidents(store: Store, before: float, batch: int, dry_run: bool) -> int:
    q = select(IncidentRow.id).where(IncidentRow.status == IncidentStatus.RESOLVED, IncidentRow.resolved_at < before)
    total, purged = 0, set()
    while True:
        with store.tx() as s:
            if dry_run:
                return _count(s, q)
            chosen = list(s.scalars(q.limit(batch)))
            if chosen:  # what points at an incident first: the foreign keys hold on PostgreSQL and SQLite
                s.execute(delete(DriftReportRow).where(DriftReportRow.incident_id.in_(chosen)))
                s.execute(update(ActionRow).where(ActionRow.incident_id.in_(chosen)).values(incident_id=None))
                s.execute(update(RollbackIntentRow).where(RollbackIntentRow.incident_id.in_(chosen))
                          .values(incident_id=None))
                # A shared-cause group outlives a member's record: the member row goes, the
                # group (and its messages' keys) stays until its own members are all gone.
                s.execute(delete(GroupMemberRow).where(GroupMemberRow.incident_id.in_(chosen)))
                s.execute(delete(IncidentRow).where(IncidentRow.id.in_(chosen)))
        total += len(chosen)
        purged.update(chosen)
        if len(chosen) < batch:
            _delete_refs(store, purged, batch)
            return total


def _delete_refs(store: Store, incidents: set[int], batch: int) -> None:
    """Where the purged incidents' messages landed (keys `incident:<id>` and `incident:<id>:<channel>`),
    in one pass over the refs by primary-key pages after the incidents went (ids are never
    given again, monitor/store/migrations 0005). Once per batch, every batch read every
    `incident:%` ref again: minutes, and a transaction held, on a year of refs. Left, a
    ref would make a later message of its key an edit of the long-resolved one's. So do
    the refs of any incident no longer stored: a purge cut short before this pass left them."""
    if not incidents:
        return
    with store.tx() as s:
        notifiers = list(s.scalars(select(MessageRefRow.notifier).distinct()))
    for notifier in notifiers:  # (notifier, key) is the primary key: each page is a range of it
        mine, after, dead = MessageRefRow.notifier == notifier, "", []
        while True:
            with store.tx() as s:
                page = list(s.scalars(select(MessageRefRow.key).where(mine, MessageRefRow.key > after,
                                                                      MessageRefRow.key.like("incident:%"))
                                      .order_by(MessageRefRow.key).limit(batch)))
            dead += _dead(store, page, incidents)
            if len(page) < batch:
                break
            after = page[-1]
        for i in range(0, len(dead), batch):  # the purged incidents' refs only: a few per incident
            with store.tx() as s:
                s.execute(delete(MessageRefRow).where(mine, MessageRefRow.key.in_(dead[i:i + batch])))


def _dead(store: Store, keys: list[str], purged: set[int]) -> list[str]:
    """The keys of a page of refs whose incident was purged now or is stored no more."""
    ids = {k: _incident_of(k) for k in keys}
    asked = {i for i in ids.values() if i is not None and i not in purged}
    with store.tx() as s:
        stored = set(s.scalars(select(IncidentRow.id).where(IncidentRow.id.in_(asked)))) if asked else set()
    return [k for k, i in ids.items() if i is not None and (i in purged or i not in stored)]


def _incident_of(key: str) -> int | None:
    parts = key.split(":", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
