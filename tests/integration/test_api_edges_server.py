"""Issue 12 against a real `vigil serve` (uvicorn on 127.0.0.1, in a subprocess): hostile
input at the edges, limits before work, and secrets that never leave.

On the old code: `GET /v1/incidents/9223372036854775808` was a 500 that reset the
keep-alive connection; 50 MB without a token was read whole (401 after 3 s, +280 MB
server memory), four at once made `/healthz` wait 1.5 s; /readyz showed the Prometheus
password and said ready with every source `unknown`.
"""
from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures_mlflow import closed_port_url
from tests.helpers_vigil import model_config
from tests.integration.test_daemon import wait_for
from tests.integration.test_daemon_signals import REPO, free_port

pytestmark = pytest.mark.slow

PASSWORD = "hunter2-e4c1"
TOKEN = "vigil-edge-token-6b1d0c"
MB = 1024 * 1024
CHUNK = b"[" * 65536


@pytest.fixture
def server(tmp_path: Path) -> Any:
    port = free_port()
    config = {
        "sources": {"prometheus": {"url": closed_port_url().replace("http://", f"http://vigil:{PASSWORD}@"),
                                   "timeout_s": 0.2, "retries": 0},
                    "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "timeout_s": 5}},
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
        "slack": {"sink_path": "notifications.jsonl"},
        "api": {"host": "127.0.0.1", "port": port, "token": "${VIGIL_EDGE_TOKEN}"},
        "schedule": {"interval": "60s", "lookback": "5m", "baseline": "10m"},
        "models": [model_config()],
    }
    (tmp_path / "vigil.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIGIL_EDGE_TOKEN": TOKEN}
    log = (tmp_path / "vigil.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-level", "DEBUG", "serve", "--config",
                             str(tmp_path / "vigil.yaml")], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        wait_for("the API", lambda: _status(port, "GET", "/healthz") == 200, 60, proc)
        # Memory is measured from here: the probe's first round has loaded its clients (MLflow).
        wait_for("the sources' first check", lambda: _all_checked(port), 60, proc)
        yield proc, port, tmp_path / "vigil.log"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _status(port: int, method: str, path: str) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request(method, path)
        return conn.getresponse().status
    except OSError:
        return 0


def _all_checked(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/readyz")
    sources = json.loads(conn.getresponse().read())["sources"]
    return bool(sources) and all(s["status"] != "unknown" for s in sources.values())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def upload(port: int, path: str, size: int, *, chunked: bool, token: str = "") -> tuple[int, float, int]:
    """POST `size` bytes as fast as the server takes them, stopping at its first answer:
    (status, seconds until it answered, bytes sent by then); status 0 if it only hung up."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n{auth}{framing}\r\n\r\n"
              .encode())
    started, sent = time.monotonic(), 0
    piece = CHUNK if not chunked else b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    try:
        while sent < size and not select.select([s], [], [], 0)[0]:
            s.sendall(piece)
            sent += len(CHUNK)
    except (ConnectionResetError, BrokenPipeError):
        pass  # it hung up on the rest of the body: its answer may still be waiting to be read
    took = time.monotonic() - started
    try:
        head = s.recv(4096)
    except ConnectionResetError:
        head = b""
    finally:
        s.close()
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, took, sent


def test_integers_beyond_64_bits_are_4xx_and_the_connection_stays_open(server):
    _, port, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for method, path, body in (("GET", "/v1/incidents/9223372036854775808", None),
                               ("GET", "/v1/audit?since_seq=" + "9" * 25, None),
                               ("POST", "/v1/incidents/" + "9" * 25 + "/ack", None),
                               ("POST", "/v1/samples", '{"model": "recommender", "records": '
                                                       '[{"timestamp": 1800000000, "x": Infinity}]}')):
        conn.request(method, path, body=body, headers=auth)
        r = conn.getresponse()
        assert r.status == 422, (path, r.status)
        assert json.loads(r.read())["fields"], path
        conn.request("GET", "/healthz")  # the same keep-alive connection
        r = conn.getresponse()
        assert r.status == 200 and r.read()


def test_fifty_megabytes_are_refused_quickly_without_the_server_growing(server):
    proc, port, _ = server
    before = rss_mb(proc.pid)
    status, took, sent = upload(port, "/v1/samples", 50 * MB, chunked=False)
    print(f"Content-Length 50 MB: {status} after {took * 1000:.0f} ms, {sent / MB:.1f} MB sent by then")
    assert status in (401, 413) and took < 1.0 and sent < 5 * MB, (status, took, sent)
    # No Content-Length: read only until the limit (api.max_body_bytes, 1 MiB) is passed.
    status, took, sent = upload(port, "/v1/models/recommender/rollback", 50 * MB, chunked=True)
    print(f"chunked 50 MB: {status} after {took * 1000:.0f} ms, {sent / MB:.1f} MB sent by then")
    assert status in (401, 413) and took < 2.0 and sent < 10 * MB, (status, took, sent)
    print(f"RSS {before:.1f} MB -> {rss_mb(proc.pid):.1f} MB")
    assert rss_mb(proc.pid) - before < 20, (before, rss_mb(proc.pid))


def test_healthz_stays_fast_while_four_uploads_run(server):
    proc, port, _ = server
    before = rss_mb(proc.pid)
    results: list[tuple[int, float, int]] = []
    stop = threading.Event()

    def uploads(client: int) -> None:
        # Each client (its own made-up token) keeps one 50 MB upload going, under the rate limit.
        while not stop.is_set():
            for path, chunked in (("/v1/samples", False), ("/v1/models/recommender/rollback", True)):
                results.append(upload(port, path, 50 * MB, chunked=chunked, token=f"not-a-token-{client}"))
                time.sleep(0.25)

    threads = [threading.Thread(target=uploads, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    latencies = []
    for _ in range(30):
        t0 = time.monotonic()
        assert _status(port, "GET", "/healthz") == 200
        latencies.append(time.monotonic() - t0)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    growth = rss_mb(proc.pid) - before
    print(f"healthz max {max(latencies) * 1000:.0f} ms, median {sorted(latencies)[15] * 1000:.0f} ms over "
          f"{len(results)} refused uploads; RSS +{growth:.1f} MB")
    statuses = [s for s, _, _ in results]
    assert len(statuses) >= 16 and set(statuses) <= {401, 413}, statuses
    assert max(latencies) < 0.5, latencies
    assert growth < 20, growth


def test_readyz_waits_for_the_probe_and_never_shows_the_password(server):
    _, port, log = server

    def readyz() -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/readyz")
        r = conn.getresponse()
        text = r.read().decode()
        assert PASSWORD not in text
        body: dict[str, Any] = json.loads(text)
        statuses = {s["status"] for s in body["sources"].values()}
        assert not (statuses == {"unknown"} and body["status"] == "ready"), body
        return body

    def probed() -> dict[str, Any] | None:
        body = readyz()
        return None if any(s["status"] == "unknown" for s in body["sources"].values()) else body

    body = wait_for("the probe", probed, 30)
    assert body["sources"]["prometheus"]["status"] == "down" and body["sources"]["mlflow"]["status"] == "up"
    assert body["sources"]["prometheus"]["url"].startswith("http://vigil:***@127.0.0.1:")
    assert body["status"] != "ready"
    assert PASSWORD not in log.read_text()
