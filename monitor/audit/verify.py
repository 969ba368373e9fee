"""The whole verdict on an audit log: its chain, and whether the checkpoints kept outside
the database agree with it.

The chain (alerts/audit.py) shows an entry that was changed, removed from the middle, or
rewritten and re-hashed without the key. The checkpoints show what a chain cannot: a
deleted tail (the log ends before a checkpoint's head), a wipe (no rows, yet checkpoints)
and a re-hash of the whole chain (a checkpoint's head hash differs). The checkpoints are
read before the log, so every one of them describes entries the log already held.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.audit import ALGORITHM, AuditEntry, ChainKey, ChainVerdict, verify_chain
from monitor.audit import checkpoints
from monitor.audit.checkpoints import Checkpoint, CheckpointRead
from monitor.store.repository import Store


@dataclass
class AuditReport:
    chain: ChainVerdict
    checkpoints: CheckpointRead
    key: ChainKey | None
    disagreement: str = ""  # the checkpoint line that disagrees with the log, and how
    disagreeing_line: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.checkpoints.problem and not self.disagreement

    @property
    def problem(self) -> str:
        if not self.chain.ok:
            return f"audit log BROKEN at seq {self.chain.first_bad_seq}: {self.chain.reason}"
        return f"audit log BROKEN: {self.checkpoints.problem or self.disagreement}" if not self.ok else ""

    def summary(self) -> str:
        c = self.chain
        if not c.checked:
            return "audit log OK: no entries"
        return f"audit log OK: {c.checked} entries (seq 1-{c.head_seq}), head {c.head_hash[:16]}"

    def to_dict(self) -> dict[str, Any]:
        c, cps = self.chain, self.checkpoints
        newest = cps.newest
        return {
            "ok": self.ok, "checked": c.checked, "first_bad_seq": c.first_bad_seq,
            "reason": c.reason or cps.problem or self.disagreement, "head_seq": c.head_seq, "head_hash": c.head_hash,
            "keyed": self.key is not None, "keyed_from": c.keyed_from, "legacy_entries": c.legacy,
            "unchecked_entries": c.unchecked, "notes": self.notes,
            "checkpoints": {"file": str(cps.path) if cps.path else None, "read": len(cps.lines),
                            "signed": cps.signed, "agree": not (cps.problem or self.disagreement),
                            "bad_line": cps.bad_line or self.disagreeing_line,
                            "newest": newest.describe() if newest else None},
        }


def _tap(entries: Iterable[AuditEntry], wanted: set[int], seen: dict[int, str]) -> Iterator[AuditEntry]:
    """Pass the stream through, keeping the hashes at the seqs checkpoints name."""
    for e in entries:
        if e.seq in wanted:
            seen[e.seq] = e.hash
        yield e


def _when(cp: Checkpoint) -> str:
    return f"written {dt.datetime.fromtimestamp(cp.at, dt.UTC):%Y-%m-%d %H:%M:%S}Z by {cp.writer}"


def _disagrees(cp: Checkpoint, chain: ChainVerdict, seen: dict[int, str], lineno: int) -> str:
    if cp.head_seq > chain.head_seq and chain.checked == 0:
        return (f"the log is empty, but checkpoint line {lineno} ({_when(cp)}) counted {cp.count} entries up to "
                f"seq {cp.head_seq}: the log was wiped")
    if cp.head_seq > chain.head_seq:
        return (f"the log ends at seq {chain.head_seq}, but checkpoint line {lineno} ({_when(cp)}) says seq "
                f"{cp.head_seq} with hash {cp.head_hash[:16]}: entries after seq {chain.head_seq} were deleted")
    if seen.get(cp.head_seq) != cp.head_hash:
        return (f"checkpoint line {lineno} ({_when(cp)}) says seq {cp.head_seq} has hash {cp.head_hash[:16]}, the "
                f"log has {seen.get(cp.head_seq, '?')[:16]}: the entries up to seq {cp.head_seq} were rewritten")
    return ""


def _compare(report: AuditReport, seen: dict[int, str]) -> None:
    """Every checkpoint must find its head in the log; the first that does not is named."""
    bad = [(lineno, cp) for lineno, cp in report.checkpoints.lines if _disagrees(cp, report.chain, seen, lineno)]
    if not bad:
        return
    lineno, cp = bad[0]
    report.disagreement, report.disagreeing_line = _disagrees(cp, report.chain, seen, lineno), lineno
    if len(bad) > 1:
        report.disagreement += (f" ({len(bad)} checkpoint lines disagree; the highest says seq "
                                f"{max(c.head_seq for _, c in bad)})")


def _notes(report: AuditReport) -> list[str]:
    c, cps, key = report.chain, report.checkpoints, report.key
    notes = []
    if key is None:
        notes.append("not keyed: without a key an entry rewritten and re-hashed with the public entry_hash cannot "
                     "be detected (configure audit.key_env or audit.key_file, or pass --key-env/--key-file)")
    if c.unchecked:
        notes.append(f"{c.unchecked} keyed entries were checked for links only: no key given")
    if c.keyed_from is not None and c.legacy:
        notes.append(f"seq 1-{c.keyed_from - 1} predate keying (legacy, plain SHA-256); keyed ({ALGORITHM}) "
                     f"from seq {c.keyed_from}, so a rewrite of them fails there")
    elif c.legacy:
        # No keyed entry at all: no key was set when any was written (not "before keying").
        notes.append(f"the audit log is not keyed: its {c.legacy} entries are a plain SHA-256 hash chain "
                     f"(no audit key was configured when they were written): only a checkpoint shows a "
                     f"rewrite re-hashed to the end")
    if cps.path is None:
        notes.append("no checkpoint file: a deleted tail or a wipe cannot be detected (set audit.checkpoint_file)")
    elif not cps.exists:
        notes.append(f"checkpoint file {cps.path} does not exist: a deleted tail or a wipe cannot be detected")
    elif cps.unsigned and key is not None:
        notes.append(f"{cps.unsigned} checkpoint lines predate the key (unsigned): compared, but not proven ours")
    elif cps.lines and key is None:
        notes.append("checkpoint signatures not checked: no key given")
    if cps.torn_last_line:
        notes.append(f"the last line of {cps.path} is incomplete (a crash while writing it?): ignored")
    newest = cps.newest
    if c.ok and newest is not None and c.head_seq > newest.head_seq:
        notes.append(f"{c.head_seq - newest.head_seq} entries after the newest checkpoint (seq {newest.head_seq}) "
                     f"are not covered by one yet: their deletion would not show")
    return notes


def verify_log(store: Store, key: ChainKey | None, checkpoint_file: Path | None,
               expect_seq: int | None = None) -> AuditReport:
    """Checkpoints first, then the log streamed once (batches, one read transaction)."""
    cps = checkpoints.read(checkpoint_file, key)
    seen: dict[int, str] = {}
    stream = store.audit_stream()
    try:
        chain = verify_chain(_tap(stream, {cp.head_seq for _, cp in cps.lines}, seen), key)
    finally:
        stream.close()  # a chain that breaks early ends the read transaction now
    report = AuditReport(chain, cps, key)
    if chain.ok:
        _compare(report, seen)
    if chain.ok and not report.disagreement and expect_seq is not None and chain.head_seq < expect_seq:
        report.disagreement = (f"the log ends at seq {chain.head_seq}, but seq {expect_seq} was expected "
                               f"(--expect-seq): entries were deleted")
    report.notes = _notes(report)
    return report


class ReportCache:
    """The API's verdict: verifying 100k entries takes seconds, so one verification runs
    at a time and its report serves every reader while the log's head and the checkpoint
    file are unchanged, for at most `max_age_s` (an edit that leaves the head alone shows
    within that time; `vigil audit verify` always reads everything)."""

    def __init__(self, max_age_s: float = 30.0) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._state: tuple[Any, float, AuditReport] | None = None  # (what it covered, when, report)

    def report(self, store: Store, key: ChainKey | None, checkpoint_file: Path | None) -> AuditReport:
        with self._lock:
            covered = (store.url, key.key_id if key else None, _stat(checkpoint_file), store.audit_head())
            now = time.monotonic()
            if self._state is not None and self._state[0] == covered and now - self._state[1] < self.max_age_s:
                return self._state[2]
            report = verify_log(store, key, checkpoint_file)
            self._state = (covered, now, report)
            return report


def _stat(path: Path | None) -> tuple[int, int] | None:
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if st is not None else None
