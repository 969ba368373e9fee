"""The Deployment's probes against the API as uvicorn serves it: each probe path is a route,
and liveness (/healthz) keeps answering while the store hangs. A PostgreSQL that stops
answering holds every /readyz and /metrics request in a worker thread; with /healthz in the
same pool of 40 threads, about 40 of them (7 minutes of readiness probes and scrapes) made
/healthz time out, and the kubelet restarted every replica at once."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.http_server import ApiThread
from tests.helpers_vigil import make_config, make_vigil

DEPLOYMENT = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "deployment.yaml"
HUNG_REQUESTS = 80  # more than the 40 threads anyio lends to sync routes


def _container() -> dict[str, Any]:
    [c] = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]["containers"]
    return dict(c)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, threading.Event]]:
    vigil = make_vigil(make_config(tmp_path))
    release, counts = threading.Event(), vigil.store.outbox_counts

    def hung() -> dict[str, int]:  # PostgreSQL not answering (bounded: the test must end)
        release.wait(20)
        return counts()

    vigil.store.outbox_counts = hung  # type: ignore[method-assign]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    api = ApiThread(create_app(vigil), "127.0.0.1", port).start()
    assert api.wait_listening(20)
    try:
        yield f"http://127.0.0.1:{port}", release
    finally:
        release.set()
        assert api.stop(10)


def test_every_probe_path_is_a_route_of_the_api(tmp_path: Path) -> None:
    client = TestClient(create_app(make_vigil(make_config(tmp_path))))
    c = _container()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert client.get(c[probe]["httpGet"]["path"]).status_code in (200, 503), probe  # not 404
        assert c[probe]["httpGet"]["port"] in {p["name"] for p in c["ports"]}, probe
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"  # the store and the cycles
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"  # the process only


def test_liveness_answers_while_the_store_hangs(served: tuple[str, threading.Event]) -> None:
    base, release = served
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200

    def readyz() -> None:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{base}/readyz", timeout=1)  # the kubelet gives up; the handler does not

    callers = [threading.Thread(target=readyz, daemon=True) for _ in range(HUNG_REQUESTS)]
    for t in callers:
        t.start()
    time.sleep(1.5)  # every /readyz is in, waiting on the store
    started = time.monotonic()
    try:
        r = httpx.get(f"{base}/healthz", timeout=3)
    except httpx.TimeoutException:
        pytest.fail("/healthz timed out while the store hung: the kubelet would restart the replica")
    assert r.status_code == 200 and time.monotonic() - started < 1.5
    release.set()
    for t in callers:
        t.join(10)
