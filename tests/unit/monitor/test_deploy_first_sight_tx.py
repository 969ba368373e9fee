"""The first sight of a model's alias dates the deploy by the version's registration time,
read from MLflow. That call must not run inside the store transaction: on SQLite that
transaction already holds the write lock (it made the model's state row), so every other
writer (the API, the outbox sender, the sweep's other cycles) waits for MLflow, up to its
10 s timeout, which is also SQLite's busy timeout: "database is locked"."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from monitor.sources.registry import ModelVersionInfo
from tests.helpers_vigil import MODEL, T0, MemoryRegistry, make_config, make_vigil, serving_registry


@dataclass
class WritingWhileAsked(MemoryRegistry):
    """Tries a write of its own (another writer of the store) while the version is asked for."""

    db: str = ""
    writes: list[str] = field(default_factory=list)

    def get_version_cached(self, name: str, version: str) -> ModelVersionInfo:
        conn = sqlite3.connect(self.db, timeout=0.3)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            self.writes.append("ok")
        except sqlite3.OperationalError as e:
            self.writes.append(str(e))
        finally:
            conn.close()
        return super().get_version_cached(name, version)


def test_the_registry_is_asked_for_a_first_seen_version_outside_the_write_transaction(tmp_path: Any) -> None:
    base = serving_registry(version="2")
    reg = WritingWhileAsked(aliases=dict(base.aliases), versions=dict(base.versions), db=str(tmp_path / "vigil.db"))
    v = make_vigil(make_config(tmp_path), registry=reg)
    events = v.deploys.record(v.config.model(MODEL), "2", T0)
    assert [(e.version, e.at, e.source) for e in events] == [("2", base.versions[(MODEL, "2")].created_at,
                                                              "observed")]
    assert reg.writes == ["ok"]  # another writer could write while MLflow was asked
    with v.store.tx() as s:
        assert v.store.model_state(s, MODEL).alias_version == "2"
