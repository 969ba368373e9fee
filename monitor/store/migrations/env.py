"""Alembic's environment for Vigil's store: run by monitor/store/schema.py (and so by
`vigil db ...`) with the connection to migrate in `config.attributes["connection"]`;
there is no alembic.ini and no URL here, so a password never lands in a file."""
from __future__ import annotations

from alembic import context

from monitor.store.metadata import target_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
