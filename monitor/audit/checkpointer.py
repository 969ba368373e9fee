"""When checkpoints of the audit log's head are written, and where copies of them go.

A checkpoint (monitor/audit/checkpoints.py) is written:

- after every rollback entry (asked, forced, done, failed, dry run), and every canary
  pull's or promotion's: the entries that matter most are never left uncovered;
- after `audit.checkpoint_every` entries this process appended, or on the first append
  `audit.checkpoint_interval_s` after the last checkpoint;
- by the daemon every `audit.checkpoint_interval_s` when the head moved (entries other
  replicas or `vigil rollback` appended), at start-up and at shutdown.

Each one goes to three places an attacker of the database would also have to reach:
the checkpoint file (signed, fsync'd), the gauge `vigil_audit_head_seq` (Prometheus keeps
its history) and an INFO log line `audit checkpoint` with the seq and hash (Loki keeps it).
Only committed entries are checkpointed: the head is read after the commit.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alerts.audit import AuditEntry, ChainKey
from monitor.audit import checkpoints
from monitor.audit.checkpoints import Checkpoint
from monitor.metrics import VigilMetrics
from monitor.store.audit_log import AuditHead
from monitor.store.repository import Store

log = logging.getLogger("vigil.audit")


@dataclass(frozen=True)
class AuditSettings:
    key: ChainKey | None
    checkpoint_file: Path | None
    every_entries: int = 100
    interval_s: float = 60.0


def is_rollback(action: str) -> bool:
    """A rollback's entry, or a canary pull's or promotion's (they move serving too).
    Refusals are left out: the guard may refuse every cycle, and nothing moved."""
    moves = action.startswith(("rollback.", "canary.pull.", "canary.promote."))
    return moves and not action.endswith(".refused")


class Checkpointer:
    def __init__(self, store: Store, settings: AuditSettings, metrics: VigilMetrics | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store, self.settings, self.metrics = store, settings, metrics
        self.writer = f"{socket.gethostname()}:{os.getpid()}"
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._pending = 0
        self._last_at = monotonic()
        self._last: AuditHead | None = None

    def committed(self, entries: list[AuditEntry]) -> None:
        """The store's listener: entries this process just committed."""
        with self._lock:
            self._pending += len(entries)
            pending = self._pending
        if any(is_rollback(e.action) for e in entries):
            self.write("rollback")
        elif pending >= self.settings.every_entries:
            self.write("entries")
        elif self._monotonic() - self._last_at >= self.settings.interval_s:
            self.write("interval")

    def carry_from(self, old: Checkpointer) -> None:
        """A reload's checkpointer goes on from the one it replaces: its last head and the
        entries counted since (a fresh one wrote the unmoved head again on its first tick).
        A new checkpoint file starts from nothing, so it gets the head too."""
        if old.settings.checkpoint_file != self.settings.checkpoint_file:
            return
        with old._lock:
            last, pending, last_at = old._last, old._pending, old._last_at
        with self._lock:
            self._last, self._pending, self._last_at = last, pending, last_at

    def start(self) -> None:
        """Say at start-up what this configuration cannot detect, then checkpoint the head."""
        if self.settings.key is None:
            log.warning("the audit log is not keyed: an entry rewritten and re-hashed with the public entry_hash "
                        "cannot be detected; set audit.key_env or audit.key_file")
        if self.settings.checkpoint_file is None:
            log.warning("audit.checkpoint_file is not set: a deleted tail or a wiped audit log shows only in the "
                        "vigil_audit_head_seq metric and the `audit checkpoint` log lines")
        self.write("start")

    def tick(self) -> Checkpoint | None:
        return self.write("interval")

    def stop(self) -> Checkpoint | None:
        return self.write("shutdown")

    def write(self, reason: str) -> Checkpoint | None:
        """Checkpoint the committed head, unless it is the one this process checkpointed last."""
        with self._lock:  # one at a time: lines appear in the order their heads were read
            head = self.store.audit_head()
            self._pending, self._last_at = 0, self._monotonic()
            if self.metrics is not None:
                self.metrics.audit_head_seq.set(head.seq)
            if head == self._last or head.count == 0:
                return None
            cp = Checkpoint(time.time(), head.count, head.seq, head.hash, self.writer).signed(self.settings.key)
            self._persist(cp)
            self._last = head
        log.info("audit checkpoint", extra={"seq": head.seq, "hash": head.hash, "count": head.count,
                                            "reason": reason, "signed": cp.sig is not None})
        return cp

    def _persist(self, cp: Checkpoint) -> None:
        path = self.settings.checkpoint_file
        if path is not None:
            try:
                checkpoints.append(path, cp)
            except OSError:  # the metric and the log line still carry it; the entries are committed
                log.exception("audit checkpoint could not be written to the file", extra={"path": str(path)})
                return
        if self.metrics is not None:
            self.metrics.audit_checkpoint_time.set(cp.at)
