"""A real Alertmanager (Debian's `prometheus-alertmanager`, installed by `make alertmanager`)
on a free 127.0.0.1 port, with a temporary config and storage directory.

Clustering is switched off (`--cluster.listen-address=`), so nothing binds beyond
loopback. Its one route goes to a receiver with no integrations: the tests read what it
received back through its own API (`GET /api/v2/alerts`).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

BINARIES = ("prometheus-alertmanager", "alertmanager")
CONFIG = """\
route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


class AlertmanagerNotInstalled(RuntimeError):
    pass


def find_alertmanager() -> str:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    raise AlertmanagerNotInstalled("Alertmanager is not installed: run `make alertmanager` "
                                   "(apt-get install prometheus-alertmanager)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalAlertmanager:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout_s: float = 20.0) -> str:
        binary = find_alertmanager()
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(CONFIG)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = (self.workdir / "alertmanager.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {(self.workdir / 'alertmanager.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"alertmanager not ready on {self.url} after {timeout_s} s")

    def alerts(self, **filters: Any) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5.0)
        resp.raise_for_status()
        out: list[dict[str, Any]] = resp.json()
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
