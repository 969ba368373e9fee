"""A throwaway PostgreSQL server on 127.0.0.1 for store tests (monitor/replay/local_postgres.py).

`make test` installs `postgresql`; without it the tests that ask for `postgres_url` skip
(and fail in CI, where the server is part of the point).
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from monitor.replay.local_postgres import LocalPostgres, find_bindir


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL server binaries missing; `make test` installs the postgresql package")
        pytest.skip("PostgreSQL server not installed (apt-get install -y postgresql)")
    with LocalPostgres() as pg:
        yield pg.url
