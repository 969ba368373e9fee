"""Signed checkpoints of the audit log's head, one JSON object per line of a file that
lives outside the database.

A line says "at time `at`, `writer` saw `count` entries, the newest seq `head_seq` with
hash `head_hash`", signed with HMAC-SHA256 under the audit key (`sig`, with `key_id`
naming the key). Whoever can rewrite the database but not read the key cannot forge a
line that agrees with a shortened or rewritten log; editing a line breaks its signature.
Lines are only ever appended (O_APPEND, one write per line, fsync'd), so several
processes can share one file.

Reading: lines written before a key was configured carry no signature and are still
compared with the log; an unsigned line after a signed one means the file was edited.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from alerts.audit import ChainKey

FORMAT = 1
_PURPOSE = b"vigil-audit-checkpoint\n"  # a checkpoint signature can never pass for an entry's HMAC


@dataclass(frozen=True)
class Checkpoint:
    at: float  # wall-clock time it was written
    count: int
    head_seq: int
    head_hash: str
    writer: str  # host:pid of the process that wrote it
    key_id: str | None = None
    sig: str | None = None
    v: int = FORMAT

    def _body(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "sig"}
        return _PURPOSE + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: ChainKey | None) -> Checkpoint:
        if key is None:
            return replace(self, key_id=None, sig=None)
        unsigned = replace(self, key_id=key.key_id, sig=None)
        return replace(unsigned, sig=key.sign(unsigned._body()))

    def signature_ok(self, key: ChainKey) -> bool:
        return self.sig is not None and self.key_id == key.key_id and self.sig == key.sign(self._body())

    def to_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def parse(cls, line: str) -> Checkpoint:
        """Raises ValueError for anything that is not a checkpoint of this format."""
        d = json.loads(line)
        if not isinstance(d, dict) or d.get("v") != FORMAT:
            raise ValueError(f"not a version {FORMAT} checkpoint")
        try:
            cp = cls(at=float(d["at"]), count=int(d["count"]), head_seq=int(d["head_seq"]),
                     head_hash=str(d["head_hash"]), writer=str(d["writer"]), key_id=d.get("key_id"),
                     sig=d.get("sig"))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"missing or malformed field: {e}") from None
        if cp.to_line() != json.dumps(d, sort_keys=True, separators=(",", ":")) + "\n":
            raise ValueError("unexpected fields or values")  # what is signed is exactly what was read
        return cp

    def describe(self) -> dict[str, Any]:
        return {"at": self.at, "count": self.count, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "writer": self.writer, "signed": self.sig is not None}


def append(path: Path, cp: Checkpoint) -> None:
    """One write of one line with O_APPEND (atomic among appenders), then fsync: once this
    returns, the checkpoint survives a crash of this machine."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, cp.to_line().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new directory entry must survive a crash too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@dataclass
class CheckpointRead:
    """What a checkpoint file holds, as far as it can be trusted."""

    path: Path | None
    exists: bool = False
    lines: list[tuple[int, Checkpoint]] = field(default_factory=list)  # (line number, checkpoint)
    signed: int = 0
    unsigned: int = 0
    problem: str = ""  # the first line that fails: the file was edited or is not ours
    bad_line: int | None = None
    torn_last_line: bool = False  # a crash mid-write leaves at most this

    def fail(self, lineno: int, problem: str) -> CheckpointRead:
        self.bad_line, self.problem = lineno, f"checkpoint line {lineno}: {problem}"
        return self

    @property
    def newest(self) -> Checkpoint | None:
        return max((cp for _, cp in self.lines), key=lambda cp: cp.head_seq, default=None)


def _signature_problem(cp: Checkpoint, key: ChainKey | None, signed_before: bool) -> str:
    if key is None:
        return ""
    if cp.sig is None:
        return "unsigned, after signed lines: the file was edited" if signed_before else ""
    if cp.key_id != key.key_id:
        return f"signed with key {cp.key_id}, not with the key given ({key.key_id})"
    if not cp.signature_ok(key):
        return "its signature does not match its content: the file was edited"
    return ""


def read(path: Path | None, key: ChainKey | None) -> CheckpointRead:
    """Every line of the file, each signature checked when `key` is given; stops at the
    first line that fails."""
    out = CheckpointRead(path)
    if path is None or not path.exists():
        return out
    out.exists = True
    text = path.read_text(errors="replace")
    rows = text.split("\n")
    for lineno, line in enumerate(rows, start=1):
        if not line.strip():
            continue
        try:
            cp = Checkpoint.parse(line)
        except ValueError as e:
            if lineno == len(rows) and not text.endswith("\n"):
                out.torn_last_line = True  # the last write was cut short; nothing after it to doubt
                break
            return out.fail(lineno, f"not a checkpoint ({e})")
        problem = _signature_problem(cp, key, out.signed > 0)
        if problem:
            return out.fail(lineno, problem)
        out.signed += cp.sig is not None
        out.unsigned += cp.sig is None
        out.lines.append((lineno, cp))
    return out
