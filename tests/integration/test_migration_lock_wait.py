"""A rolling upgrade on a real PostgreSQL: `vigil db upgrade` runs while replicas of the old
version still run. A migration's ALTER TABLE waits for every open transaction on its table,
and every other replica's statement on that table queued behind it: one old replica's long
transaction stalled the whole fleet for as long as it lasted. The upgrade now waits a bounded
time for the lock, gives way and tries again, and gives up naming what it waited on."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from monitor.store import schema
from monitor.store.repository import Store
from monitor.store.schema import MigrationLockBusy, SchemaState
from tests.fixtures_postgres import postgres_url  # noqa: F401  (fixture)
from tests.helpers_replicas import fresh_schema_url

BEFORE = "0007_ack_severity"  # 0008 adds a column to model_state: an ALTER TABLE


@pytest.fixture
def url(postgres_url: str) -> str:  # noqa: F811
    url = fresh_schema_url(postgres_url)
    store = Store(url)
    with store.engine.connect() as conn:
        command.downgrade(schema.alembic_config(conn), BEFORE)
        conn.commit()
    store.close()
    return url


def test_replicas_keep_reading_while_an_upgrade_waits_for_an_old_replicas_transaction(url):
    engine = create_engine(url)
    old = engine.connect()  # an old replica in the middle of a transaction on model_state
    old.execute(text("SELECT count(*) FROM model_state"))
    outcome: dict[str, Any] = {}

    def upgrade() -> None:
        try:
            outcome["after"] = schema.upgrade(create_engine(url), lock_timeout_s=1.0, attempts=30)[1]
        except Exception as e:  # reported below
            outcome["error"] = e

    migrating = threading.Thread(target=upgrade)
    migrating.start()
    time.sleep(1.5)  # the upgrade is waiting for the old replica's transaction
    with engine.connect() as other:  # another replica's cycle reads the table meanwhile
        other.execute(text("SET statement_timeout = '4s'"))
        began = time.monotonic()
        try:
            other.execute(text("SELECT count(*) FROM model_state")).scalar_one()
        except OperationalError:
            pytest.fail(f"a replica's read queued behind the waiting migration for {time.monotonic() - began:.1f} s "
                        "(statement timeout 4 s): the whole fleet stalls on one old replica's transaction")
    old.rollback()  # the old replica's transaction ends: the upgrade gets its lock
    old.close()
    migrating.join(timeout=60)
    assert "error" not in outcome, outcome
    assert outcome["after"].state is SchemaState.CURRENT
    engine.dispose()


def test_an_upgrade_that_never_gets_its_lock_gives_up_naming_what_it_waited_on(url):
    engine = create_engine(url)
    with engine.connect() as old:
        old.execute(text("SELECT count(*) FROM model_state"))
        with pytest.raises(MigrationLockBusy) as raised:
            schema.upgrade(create_engine(url), lock_timeout_s=0.3, attempts=2)
        old.rollback()
    message = str(raised.value)
    assert "ALTER TABLE model_state" in message and "run `vigil db upgrade` again" in message, message
    assert schema.status(engine).current == BEFORE, "nothing was changed"
    engine.dispose()
