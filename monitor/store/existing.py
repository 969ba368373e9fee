"""The store of a command that inspects or acts on the daemon's (`vigil audit verify`, `status`,
`outbox list` and `drop`, `silence list` and `expire`, `db purge`): it must already exist. Opening a `Store` on a
SQLite path that is not there creates an empty store at head, which then answers "audit log
OK: no entries" or "nothing waits in the outbox" for a typo. The daemon, `vigil db upgrade`
and `vigil silence add` (a silence made before a first start) still create it."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from monitor.store.repository import Store


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file `url` names when it does not exist; None for any other store."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL: Store's own error says so
        return None
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def existing_store(url: str) -> Store:
    """`Store(url)`, refused with the driver-style error the commands already turn into one
    line and exit 75 (`monitor/cli_store.py`, store_error_exit) when its SQLite file is missing."""
    path = missing_sqlite_file(url)
    if path is not None:
        raise OperationalError("open the store", None, FileNotFoundError(
            f"no such SQLite file {path} (a store is made by the daemon's first start or `vigil db upgrade`; "
            "check the path)"))
    return Store(url)
