"""An audited SQLite store with a key and a checkpoint file, and the tampering the issue
tried: deleting rows, rewriting one and re-hashing the rest with the public function."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.audit import entry_hash
from monitor.audit.checkpointer import Checkpointer
from monitor.audit.wiring import install
from monitor.store.repository import Store
from tests.helpers_vigil import make_config

KEY_ENV = "VIGIL_TEST_AUDIT_KEY"
KEY = "3f1c0e9a7b5d2c4e6f8a0b1c2d3e4f5a"


@dataclass
class Audited:
    db: Path
    checkpoint_file: Path
    store: Store
    checkpoints: Checkpointer

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as con:
            return con.execute(statement, params).fetchall()

    def head(self) -> int:
        return int(self.sql("select max(seq) from audit_log")[0][0] or 0)

    def rewrite_and_rehash(self, seq: int, actor: str) -> None:
        """Change one entry, then re-hash it and every later one with the public entry_hash."""
        rows = self.sql("select seq, at, actor, action, target, detail, prev_hash from audit_log where seq >= ? "
                        "order by seq", seq)
        prev = rows[0][6]
        with sqlite3.connect(self.db) as con:
            for s, at, old_actor, action, target, detail, _ in rows:
                who = actor if s == seq else old_actor
                h = entry_hash(prev, s, at, who, action, target, json.loads(detail))
                con.execute("update audit_log set actor = ?, prev_hash = ?, hash = ? where seq = ?", (who, prev, h, s))
                prev = h


def audited_store(tmp_path: Path, *, keyed: bool = True, entries: int = 6, **audit: Any) -> Audited:
    """A store with `entries` appended through a configured Vigil's audit wiring, then
    checkpointed as a daemon does at shutdown."""
    cps = tmp_path / "audit.checkpoints"
    section = {"checkpoint_file": str(cps), **({"key_env": KEY_ENV} if keyed else {}), **audit}
    cfg = make_config(tmp_path, audit=section)
    store = Store(cfg.store.url)
    checkpointer = install(store, cfg, None)
    for i in range(entries):
        store.audit("alice", "incident.ack", f"incident:{i + 1}", {"i": i}, now=1000.0 + i)
    checkpointer.stop()
    return Audited(tmp_path / "vigil.db", cps, store, checkpointer)


def verify_args(a: Audited, *, key: bool = True) -> list[str]:
    return ["audit", "verify", "--store", a.url, "--checkpoint-file", str(a.checkpoint_file),
            *(["--key-env", KEY_ENV] if key else [])]
