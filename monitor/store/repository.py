"""Vigil's own state, in SQLAlchemy: SQLite by default (one file), PostgreSQL by URL.

What lives here: per-model state (last seen alias version, SLO streaks, detector
state), deploy events, incidents, the notification outbox, actions (rollbacks), the
hash-chained audit log, ingested feature samples, stored reference profiles, drift
reports and API idempotency keys. An incident change and the notifications it causes
are written in one transaction (`Store.tx()`), so a crash can delay a notification but
never lose it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import create_engine, event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from alerts.audit import AuditEntry, ChainKey
from alerts.outbox import MessageKind
from detectors.records import DeployEvent, json_safe
from monitor.store import audit_log, detector_states, idempotency, intents, leases, reports, schema
from monitor.store import labels as labels
from monitor.store import metadata as metadata  # registers every table module on Base (schema, migrations)
from monitor.store.outbox import Outbox
from monitor.store.tables import (
    ActionRow,
    ActionStatus,
    AuditRow,
    Base,
    DeployRow,
    DriftReportRow,
    IdempotencyRow,
    IncidentRow,
    IncidentStatus,
    MessageRefRow,
    ModelStateRow,
    OutboxRow,
    OutboxStatus,
    ProfileRow,
    SampleRow,
)

__all__ = [  # the tables are re-exported: `from monitor.store.repository import IncidentRow` keeps working
    "ActionRow", "ActionStatus", "AuditRow", "Base", "DeployRow", "DriftReportRow", "IdempotencyRow", "IncidentRow",
    "IncidentStatus", "MessageRefRow", "ModelStateRow", "OutboxRow", "OutboxStatus", "ProfileRow", "SampleRow",
    "Store",
]

log = logging.getLogger("vigil.store")

# (fence, model, token) of the cycle running in this thread; a context variable, so the
# API's threads and other models' cycles are never fenced by it.
_FENCE: ContextVar[tuple[Any, str, int] | None] = ContextVar("vigil_fence", default=None)
# (store, session) of the `one_transaction()` this thread is inside, if any.
_SHARED: ContextVar[tuple[Any, Session] | None] = ContextVar("vigil_shared_tx", default=None)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # the API reads while the daemon writes
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        postgres = self.engine.dialect.name == "postgresql"  # its sessions end idle transactions (leases.py)
        event.listen(self.engine, "connect", leases.bound_idle_transactions if postgres else _sqlite_pragmas)
        try:  # an empty store is created at head; one holding data waits for `vigil db upgrade` (schema.py)
            schema.create_if_empty(self.engine)
        except BaseException:
            self.engine.dispose()  # the connection that read the schema is closed, not left in the pool
            raise
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self.outbox = Outbox(self.tx, self.engine.dialect.name)
        self.labels = labels.Labels(self.tx, self.engine.dialect.name)  # delayed labels, performance reports
        # Set by monitor.audit.wiring.install: the key audit hashes are keyed with (None: plain
        # SHA-256, as before keying existed), and who hears of entries once they commit.
        self.audit_key: ChainKey | None = None
        self.audit_listener: Callable[[list[AuditEntry]], None] | None = None

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: everything inside commits together or not at all. Inside
        `fenced(...)` it first checks the model's lease (monitor/replicas), so a replica
        that lost the model cannot commit a write of its cycle. Inside `one_transaction()`
        it is that transaction."""
        shared = _SHARED.get()
        if shared is not None and shared[0] is self:
            yield shared[1]
            return
        with self._session.begin() as s:
            fence = _FENCE.get()
            if fence is not None:
                fence[0].check(s, fence[1], fence[2])
            yield s
        appended, listener = s.info.get(audit_log.APPENDED), self.audit_listener
        if appended and listener is not None:
            self._announce(listener, appended)

    @contextmanager
    def one_transaction(self) -> Iterator[Session]:
        """Every `tx()` this thread opens inside is this one transaction: a cycle's reads
        of one moment take one begin and commit instead of one each. For reads: a write
        inside commits with the rest, at the end."""
        with self.tx() as s:
            reset = _SHARED.set((self, s))
            try:
                yield s
            finally:
                _SHARED.reset(reset)

    @staticmethod
    def _announce(listener: Callable[[list[AuditEntry]], None], entries: list[AuditEntry]) -> None:
        """After the commit: the entries are written whatever the listener does, so its
        failure is logged, never raised (the caller would retry and append them twice)."""
        try:
            listener(entries)
        except Exception:
            log.exception("audit listener failed after a commit", extra={"seq": entries[-1].seq})

    @staticmethod
    def fencing_token() -> int | None:
        """The token this thread's transactions carry, if any (recorded on rollback intents)."""
        fence = _FENCE.get()
        return fence[2] if fence is not None else None

    @contextmanager
    def fenced(self, fence: Any, model: str, token: int) -> Iterator[None]:
        """Every transaction this thread opens inside carries `model`'s fencing token."""
        reset = _FENCE.set((fence, model, token))
        try:
            yield
        finally:
            _FENCE.reset(reset)

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- model state
    def model_state(self, s: Session, model: str) -> ModelStateRow:
        row = s.get(ModelStateRow, model)
        if row is None:
            row = ModelStateRow(model=model, slo_streaks={}, detector_state={}, quiet_cycles=0)
            s.add(row)
            s.flush()
        return row

    def detector_state(self, s: Session, model: str) -> dict[str, Any]:
        """The model's detectors' state as the last cycle left it (monitor/store/detector_states.py)."""
        state = s.get(ModelStateRow, model)
        return detector_states.load(s, model, state.detector_state if state is not None else None)

    def save_detector_state(self, s: Session, model: str, state: dict[str, Any]) -> int:
        """Store `state`, writing only the series whose state changed (rows written)."""
        row = self.model_state(s, model)
        if row.detector_state:
            row.detector_state = {}  # the JSON of a store from before: moved to its rows now
        return detector_states.save(s, model, state)

    def models_never_run(self, models: list[str]) -> set[str]:
        """Those of `models` without a finished cycle (no state row, or no cycle time)."""
        with self.tx() as s:
            ran = set(s.scalars(select(ModelStateRow.model).where(ModelStateRow.last_cycle_at.is_not(None))))
        return {m for m in models if m not in ran}

    def cycled_at(self, models: list[str], t: float) -> set[str]:
        """Those of `models` whose last finished cycle is at `t` or later."""
        with self.tx() as s:
            return set(s.scalars(select(ModelStateRow.model).where(ModelStateRow.model.in_(models),
                                                                   ModelStateRow.last_cycle_at >= t)))

    def open_onsets(self, models: list[str]) -> dict[str, float | None]:
        """Onset of each model's open incident (one read for a sweep)."""
        with self.tx() as s:
            rows = s.execute(select(IncidentRow.model, IncidentRow.onset, IncidentRow.id)
                             .where(IncidentRow.status == IncidentStatus.OPEN).order_by(IncidentRow.id))
            found = {model: onset for model, onset, _ in rows}
        wanted = set(models)
        return {m: o for m, o in found.items() if m in wanted}

    # ---------------------------------------------------------------- deploys
    def add_deploy(self, s: Session, d: DeployEvent) -> None:
        s.add(DeployRow(model=d.model, alias=d.alias, version=d.version, previous_version=d.previous_version,
                        at=d.at, source=d.source))

    def deploys(self, model: str, since: float | None = None, until: float | None = None) -> list[DeployEvent]:
        with self.tx() as s:
            q = select(DeployRow).where(DeployRow.model == model)
            if since is not None:
                q = q.where(DeployRow.at >= since)
            if until is not None:
                q = q.where(DeployRow.at <= until)
            return [r.to_event() for r in s.scalars(q.order_by(DeployRow.at, DeployRow.id))]

    def last_deploy(self, model: str, until: float | None = None) -> DeployEvent | None:
        with self.tx() as s:
            q = select(DeployRow).where(DeployRow.model == model)
            if until is not None:
                q = q.where(DeployRow.at <= until)
            row = s.scalars(q.order_by(DeployRow.at.desc(), DeployRow.id.desc()).limit(1)).first()
            return row.to_event() if row else None

    def rollback_target(self, model: str) -> str | None:
        """The version that served before the last real deploy.

        Vigil's own rollbacks are deploy events too, and a rollback's "previous" is the bad
        version: skipping them keeps a repeated rollback a no-op instead of a roll-forward.
        """
        for d in reversed(self.deploys(model)):
            if d.source != "rollback":
                return d.previous_version
        return None

    # ---------------------------------------------------------------- incidents
    def open_incident(self, s: Session, model: str) -> IncidentRow | None:
        return s.scalars(
            select(IncidentRow).where(IncidentRow.model == model, IncidentRow.status == IncidentStatus.OPEN)
            .order_by(IncidentRow.id.desc()).limit(1)
        ).first()

    def incident(self, incident_id: int) -> IncidentRow | None:
        with self.tx() as s:
            return s.get(IncidentRow, incident_id)

    def incidents(self, *, model: str | None = None, status: str | None = None, limit: int = 100,
                  offset: int = 0, before_id: int | None = None) -> list[IncidentRow]:
        """Newest first; `before_id`: only older ones (the API's page cursor)."""
        with self.tx() as s:
            q = select(IncidentRow) if before_id is None else select(IncidentRow).where(IncidentRow.id < before_id)
            if model:
                q = q.where(IncidentRow.model == model)
            if status:
                q = q.where(IncidentRow.status == status)
            return list(s.scalars(q.order_by(IncidentRow.id.desc()).limit(limit).offset(offset)))

    def count_incidents(self, *, model: str | None = None, status: str | None = None) -> int:
        """How many incidents match the filters of `incidents()`: a list's `total`."""
        with self.tx() as s:
            q = select(func.count()).select_from(IncidentRow)
            if model:
                q = q.where(IncidentRow.model == model)
            if status:
                q = q.where(IncidentRow.status == status)
            return int(s.scalar(q) or 0)

    def all_incidents(self) -> list[IncidentRow]:
        with self.tx() as s:
            return list(s.scalars(select(IncidentRow).order_by(IncidentRow.id)))

    # ---------------------------------------------------------------- outbox (monitor/store/outbox.py)
    def enqueue(self, s: Session, notifier: str, kind: MessageKind, key: str, payload: dict[str, Any],
                now: float) -> OutboxRow:
        return self.outbox.enqueue(s, notifier, kind, key, payload, now)

    def outbox_counts(self) -> dict[str, int]:
        return self.outbox.counts()

    def outbox_for_prefix(self, prefix: str) -> list[OutboxRow]:
        return self.outbox.for_prefix(prefix)

    # ---------------------------------------------------------------- actions
    def add_action(self, s: Session, **fields: Any) -> ActionRow:
        row = ActionRow(**fields)
        s.add(row)
        s.flush()
        return row

    def actions(self, *, model: str | None = None, incident_id: int | None = None) -> list[ActionRow]:
        with self.tx() as s:
            q = select(ActionRow)
            if model:
                q = q.where(ActionRow.model == model)
            if incident_id is not None:
                q = q.where(ActionRow.incident_id == incident_id)
            return list(s.scalars(q.order_by(ActionRow.id)))

    def incident_actions(self, s: Session, incident_id: int) -> list[dict[str, Any]]:
        """An incident's actions, read in the caller's transaction."""
        q = select(ActionRow).where(ActionRow.incident_id == incident_id).order_by(ActionRow.id)
        return [a.to_dict() for a in s.scalars(q)]

    def rollback_times(self, model: str) -> list[float]:
        """When this model's rollbacks were asked for (intents pending or done): what the
        guard's cool-down and daily cap count."""
        with self.tx() as s:
            return intents.counted_times(s, model)

    # ---------------------------------------------------------------- audit
    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any], now: float | None = None
              ) -> AuditEntry:
        """Append one entry to the hash chain (in its own transaction, so it is on disk
        before the action it describes runs)."""
        def append() -> AuditEntry:
            with self.tx() as s:
                return self.audit_in(s, actor, action, target, detail, now=now)

        return audit_log.retry_audited(append, "append to the audit log")

    def audit_in(self, s: Session, actor: str, action: str, target: str, detail: dict[str, Any],
                 now: float | None = None) -> AuditEntry:
        """Append in the caller's transaction, so the entry commits with what it records (a
        rollback's outcome): both or neither. A racing writer makes the commit fail, and the
        caller's retry writes both again."""
        at = time.time() if now is None else now
        return audit_log.append(s, self.audit_key, at, actor, action, target, json_safe(detail))

    def audit_entries(self, *, since_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
        with self.tx() as s:
            q = select(AuditRow).where(AuditRow.seq > since_seq).order_by(AuditRow.seq)
            if limit:
                q = q.limit(limit)
            return [r.to_entry() for r in s.scalars(q)]

    def count_audit(self, *, since_seq: int = 0) -> int:
        with self.tx() as s:
            return int(s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.seq > since_seq)) or 0)

    def audit_stream(self) -> Generator[AuditEntry, None, None]:
        """Every entry in seq order, in batches, in one read transaction (close it when done)."""
        with self._session.begin() as s:
            yield from audit_log.stream(s)

    def audit_head(self) -> audit_log.AuditHead:
        with self._session.begin() as s:  # a read: no fence, so a checkpoint never waits on a lease
            return audit_log.head(s)

    def add_samples(self, model: str, records: list[tuple[float, dict[str, Any]]],
                    keep: Callable[[Session], None] | None = None) -> int:
        """`keep` writes in the same transaction (an Idempotency-Key's answer; IntegrityError: nothing stored).
        One executemany of rows made first: via the ORM 100,000 records held SQLite's write lock ~9 s."""
        rows = [{"model": model, "ts": ts, "record": json_safe(r)} for ts, r in records]
        with self.tx() as s:
            _ = keep(s) if keep else None
            _ = s.execute(insert(SampleRow), rows) if rows else None
        return len(records)

    def samples(self, model: str, start: float, end: float) -> list[tuple[float, dict[str, Any]]]:
        with self.tx() as s:
            rows = s.execute(select(SampleRow.ts, SampleRow.record).where(
                SampleRow.model == model, SampleRow.ts >= start, SampleRow.ts <= end).order_by(SampleRow.ts))
            return [(ts, rec) for ts, rec in rows]

    # ---------------------------------------------------------------- profiles, reports, idempotency keys
    def profile(self, model: str, version: str, source: str, newer_than: float | None = None) -> bytes | None:
        """The stored profile; None when there is none or it was made before `newer_than`."""
        with self.tx() as s:
            row = s.get(ProfileRow, (model, version, source))
            fresh = row is not None and (newer_than is None or row.created_at >= newer_than)
            return reports.unpack_profile(row.profile, row.profile_gz) if row and fresh else None

    def save_profile(self, model: str, version: str, source: str, blob: bytes, now: float) -> None:
        packed = reports.pack_profile(blob)  # outside the transaction: it holds SQLite's write lock
        with self.tx() as s:
            s.merge(ProfileRow(model=model, version=version, source=source, profile=b"", profile_gz=packed,
                               created_at=now))

    def save_drift_report(self, incident_id: int, html: str, now: float) -> None:
        with self.tx() as s:
            s.merge(DriftReportRow(incident_id=incident_id, html="", html_gz=reports.pack(html), created_at=now))

    def drift_report(self, incident_id: int) -> str | None:
        """The report's HTML, whether stored compressed or (before compression) as text."""
        with self.tx() as s:
            row = s.get(DriftReportRow, incident_id)
            return reports.unpack(row.html, row.html_gz) if row else None

    def has_drift_report(self, incident_id: int) -> bool:
        with self.tx() as s:  # the key only: the report itself may be megabytes
            return s.scalar(select(DriftReportRow.incident_id).filter_by(incident_id=incident_id)) is not None

    def idempotent_response(self, scope: str, key: str) -> IdempotencyRow | None:
        with self.tx() as s:
            return s.get(IdempotencyRow, (key, scope))

    def save_idempotent_response(self, scope: str, key: str, request_hash: str, status_code: int,
                                 response: dict[str, Any], now: float, *, replace_before: float = 0.0) -> bool:
        """False when another request already stored a response for this key (unexpired: since `replace_before`)."""
        try:
            with self.tx() as s:
                idempotency.put_response(s, scope, key, request_hash, status_code, response, now,
                                         replace_before=replace_before)
            return True
        except IntegrityError:
            return False

