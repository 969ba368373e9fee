"""`vigil run` whose api.port another process holds (a second copy, a forgotten server):
it ran the models' first cycles (opening incidents, paging) and only then stopped with
"the HTTP API stopped (3)". It now says which address it could not listen on and exits 1
before any cycle runs."""
from __future__ import annotations

import socket
import sqlite3

import pytest

from tests.integration.test_daemon_signals import sink_lines, start, write_config

pytestmark = pytest.mark.slow


def test_a_taken_api_port_stops_the_daemon_before_any_cycle_naming_the_address(tmp_path):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        config = write_config(tmp_path, models=["recommender"], interval="5s", grouping=False)
        config["api"]["port"] = holder.getsockname()[1]
        (tmp_path / "vigil.yaml").write_text(__import__("yaml").safe_dump(config))
        proc = start(tmp_path, "run")
        _, err = proc.communicate(timeout=60)
    finally:
        holder.close()
    assert proc.returncode == 1, err
    assert f"127.0.0.1:{config['api']['port']}" in err and "api.port" in err, err
    # uvicorn's bare SystemExit(3) read "(3; see the error above)": a number nobody could place
    assert "(uvicorn stopped at start-up, exit code 3; see the error above)" in err, err
    assert sink_lines(tmp_path) == []  # Prometheus is down: a cycle would have paged the outage
    with sqlite3.connect(tmp_path / "vigil.db") as db:
        assert db.execute("SELECT count(*) FROM incidents").fetchone() == (0,)
