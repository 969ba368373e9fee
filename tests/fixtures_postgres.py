"""A throwaway PostgreSQL server from Debian's packages, on 127.0.0.1, for store tests.

`make test` installs `postgresql`; the server runs as the `postgres` user (PostgreSQL
refuses to run as root) from a temporary data directory and is stopped afterwards.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL server binaries missing; `make test` installs the postgresql package")
        pytest.skip("PostgreSQL server not installed (apt-get install -y postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
    data = tmp / "data"
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--no-sync", "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = tmp / "pg.log"
    with open(log, "w") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(_as_postgres([str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                                              "-p", str(port), "-k", str(tmp), "-c", "fsync=off"]),
                                stdout=subprocess.DEVNULL, stderr=err)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    deadline = time.time() + 60
    import psycopg

    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2).close()
            break
        except psycopg.OperationalError as e:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"postgres did not start: {log.read_text()[-2000:]}") from e
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
