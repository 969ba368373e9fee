"""A `vigil run` refused at start on a PostgreSQL store (the store behind this Vigil's schema, an
audit key that cannot be read once the store is open) hands back every connection it opened:
the server's count for the database is where it was when the refusal returns."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from monitor.cli import main
from monitor.store import schema
from tests.fixtures_postgres import postgres_url  # noqa: F401  (fixture)


@pytest.fixture
def database(postgres_url: str) -> Iterator[tuple[str, str]]:  # noqa: F811
    """A database of its own (its URL and name): only this test's connections are counted."""
    name = f"vigil_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}", name
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def connections(postgres_url: str, name: str, expect: int, within_s: float = 5.0) -> int:  # noqa: F811
    """The server's connections to `name`, waited for to reach `expect` (a closed one's backend
    leaves pg_stat_activity a moment after the client let it go)."""
    admin = create_engine(postgres_url)
    deadline = time.monotonic() + within_s
    try:
        while True:
            with admin.connect() as c:
                n = int(c.execute(text("select count(*) from pg_stat_activity where datname = :d"), {"d": name})
                        .scalar_one())
            if n == expect or time.monotonic() > deadline:
                return n
            time.sleep(0.1)
    finally:
        admin.dispose()


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"url": url}, "slack": {"sink_path": "notifications.jsonl"}, "spool": {"directory": "spool"},
        "sources": {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
        "models": [{"name": "m"}]}))
    return path


def test_vigil_run_on_a_store_behind_hands_back_its_connections(tmp_path, postgres_url, database):  # noqa: F811
    url, name = database
    engine = create_engine(url)
    schema.upgrade(engine, "0001_baseline")  # the store as an earlier version left it
    engine.dispose()
    assert connections(postgres_url, name, 0) == 0
    assert main(["run", "--config", str(write_config(tmp_path, url)), "--no-api"]) == 78
    assert connections(postgres_url, name, 0) == 0


def test_a_start_refused_by_the_audit_key_hands_back_its_connections(tmp_path, postgres_url, database,  # noqa: F811
                                                                      monkeypatch):
    from monitor.audit import wiring
    from monitor.audit.keys import AuditKeyError

    url, name = database

    def unreadable(config):  # the key file removed between the config's check and the daemon's read
        raise AuditKeyError("audit.key_file: /etc/vigil/audit.key: no such file")

    monkeypatch.setattr(wiring, "settings_for", unreadable)
    assert main(["run", "--config", str(write_config(tmp_path, url)), "--no-api"]) == 2
    assert connections(postgres_url, name, 0) == 0


def test_a_store_whose_schema_cannot_be_created_hands_back_its_connections(postgres_url, database):  # noqa: F811
    """A role that may connect but not create tables (PostgreSQL 15's default on `public`): opening
    the empty store fails, and the connection it opened to read the schema is closed with it."""
    from sqlalchemy.exc import ProgrammingError

    from monitor.store.repository import Store

    url, name = database
    role = f"r_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE ROLE {role} LOGIN"))
        c.execute(text(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}"))
    admin.dispose()
    try:
        with pytest.raises(ProgrammingError, match="permission denied"):
            Store(url.replace("://postgres@", f"://{role}@"))
        assert connections(postgres_url, name, 0) == 0
    finally:
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()
