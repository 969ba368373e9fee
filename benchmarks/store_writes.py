"""What a sweep writes to the store, per table: statements and bytes of bound values, and
the number of transactions (all, and those that wrote anything). The scale benchmark listens on the
store's engine (SQLAlchemy's `before_cursor_execute` and `commit` events, in its own
process only); nothing in Vigil knows about it.

Bytes are those of the values sent with INSERT and UPDATE statements (text as UTF-8,
blobs as they are, numbers as 8): what the database has to store or rewrite, before its
own page and WAL overhead.
"""
from __future__ import annotations

import re
import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, event

_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)\"?", re.IGNORECASE)


def _value_bytes(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, bytes | bytearray | memoryview):
        return len(v)
    if isinstance(v, str):
        return len(v.encode("utf-8"))
    return 8


class StoreWrites:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.statements: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)
        self.transactions = 0  # commits that wrote at least one row
        self.begun = 0  # every transaction, reads included

    def reset(self) -> None:
        with self._lock:
            self.statements.clear()
            self.bytes.clear()
            self.transactions = 0
            self.begun = 0

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._on_execute)
        event.listen(engine, "begin", self._on_begin)
        event.listen(engine, "commit", self._on_commit)
        event.listen(engine, "rollback", self._on_rollback)

    def detach(self, engine: Engine) -> None:
        event.remove(engine, "before_cursor_execute", self._on_execute)
        event.remove(engine, "begin", self._on_begin)
        event.remove(engine, "commit", self._on_commit)
        event.remove(engine, "rollback", self._on_rollback)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                    executemany: bool) -> None:
        m = _WRITE.match(statement)
        if m is None:
            return
        table = m.group(2).lower()
        rows = parameters if executemany else [parameters]
        size = 0
        for row in rows or []:
            values = row.values() if isinstance(row, dict) else (row or ())
            size += sum(_value_bytes(v) for v in values)
        self._local.wrote = True
        with self._lock:
            self.statements[table] += len(rows or [None])
            self.bytes[table] += size

    def _on_begin(self, _conn: Any) -> None:
        with self._lock:
            self.begun += 1

    def _on_commit(self, _conn: Any) -> None:
        if getattr(self._local, "wrote", False):
            self._local.wrote = False
            with self._lock:
                self.transactions += 1

    def _on_rollback(self, _conn: Any) -> None:
        self._local.wrote = False

    def summary(self, per: int = 1) -> str:
        """Per table, biggest first: `table=bytes/statements` divided by `per` (models)."""
        order = sorted(self.bytes.items(), key=lambda kv: -kv[1])
        total = sum(self.bytes.values())
        parts = [f"{t}={b / per / 1e3:.1f}KB/{self.statements[t] / per:.1f}" for t, b in order]
        return (f"total={total / per / 1e3:.1f}KB statements={sum(self.statements.values()) / per:.1f} "
                f"tx={self.begun / per:.1f} write_tx={self.transactions / per:.1f} | " + " ".join(parts))
