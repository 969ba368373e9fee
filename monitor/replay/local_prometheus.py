"""A real Prometheus on 127.0.0.1, backfilled from an OpenMetrics file, for replay and tests.

`vigil replay --bundle DIR` and the integration tests use this one runner:

    with LocalPrometheus(bundle / "metrics.om", workdir) as prom:
        url = prom.url            # http://127.0.0.1:PORT

start() backfills with `promtool tsdb create-blocks-from openmetrics` into a fresh
<workdir>/data, starts `prometheus` in its own process group and waits for /-/ready;
stop() ends that process group (and only it). Nothing is scraped: the data is
what the file holds. Several files (e.g. a bundle's metrics.om and a replay's
vigil-metrics.om) are backfilled one after the other into the same data directory;
their blocks may overlap in time, which Prometheus (>= 2.39) merges at query time.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus"
_CONFIG = """\
# Written by Vigil's LocalPrometheus: no scrape targets, the data is backfilled.
global:
  scrape_interval: 15s
  evaluation_interval: 15s
"""


class PrometheusNotInstalled(RuntimeError):
    """The prometheus/promtool binaries are not on PATH."""

    def __init__(self, missing: str) -> None:
        self.missing = missing
        super().__init__(
            f"{missing} was not found on PATH; install Prometheus with: "
            f"apt-get update && {INSTALL_HINT}"
        )


class LocalPrometheusError(RuntimeError):
    """Backfill or start failed; the message carries the tail of the tool's output."""


def find_binaries() -> tuple[str, str]:
    """(prometheus, promtool) paths, or PrometheusNotInstalled."""
    found = []
    for name in ("prometheus", "promtool"):
        path = shutil.which(name)
        if path is None:
            raise PrometheusNotInstalled(name)
        found.append(path)
    return found[0], found[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def backfill(promtool: str, openmetrics_path: Path, data_dir: Path, timeout_s: float = 300) -> str:
    """promtool tsdb create-blocks-from openmetrics; returns promtool's summary output."""
    try:
        proc = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics_path), str(data_dir)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise LocalPrometheusError(f"promtool backfill of {openmetrics_path} took over {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise LocalPrometheusError(
            f"promtool could not backfill {openmetrics_path} (exit {proc.returncode}):\n"
            f"{_tail(proc.stderr + proc.stdout)}"
        )
    return proc.stdout


class LocalPrometheus:
    """A Prometheus process this object started and will stop; a context manager."""

    def __init__(
        self,
        openmetrics_path: Path | Sequence[Path] | None,
        workdir: Path,
        *,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        # Absolute paths: prometheus runs with the workdir as its current directory.
        if openmetrics_path is None:
            paths: list[Path] = []
        elif isinstance(openmetrics_path, (str, os.PathLike)):
            paths = [Path(openmetrics_path)]
        else:
            paths = [Path(x) for x in openmetrics_path]
        self.openmetrics_paths = [x.resolve() for x in paths]
        self.openmetrics_path = self.openmetrics_paths[0] if self.openmetrics_paths else None
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.extra_args = tuple(extra_args)  # e.g. "--query.lookback-delta=15m"
        self.url: str | None = None
        self.backfill_s: float | None = None
        self.ready_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = self.workdir / "prometheus.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 30) -> str:
        if self._proc is not None:
            if self.running:
                assert self.url is not None
                return self.url
            self.stop()
        prometheus, promtool = find_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The data directory is ours: a previous run's blocks would overlap the new ones.
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        for path in self.openmetrics_paths:
            if not path.is_file():
                raise FileNotFoundError(f"OpenMetrics file not found: {path}")
        if self.openmetrics_paths:
            t0 = time.perf_counter()
            for path in self.openmetrics_paths:
                backfill(promtool, path, self.data_dir, timeout_s=max(timeout_s, 60))
            self.backfill_s = time.perf_counter() - t0
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(_CONFIG)

        # A port picked here can be taken before prometheus binds it; pick again then.
        attempts = 1 if self.port is not None else 3
        for attempt in range(attempts):
            port = self.port if self.port is not None else _free_port()
            try:
                return self._launch(prometheus, config_path, port, timeout_s)
            except LocalPrometheusError as e:
                if "address already in use" not in str(e) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _launch(self, prometheus: str, config_path: Path, port: int, timeout_s: float) -> str:
        cmd = [
            prometheus,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
            *self.extra_args,
        ]
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        with open(self._log_path, "wb") as logf:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() ends all of it
                cwd=self.workdir,
            )
        atexit.register(self.stop)
        deadline = t0 + timeout_s
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                atexit.unregister(self.stop)
                raise LocalPrometheusError(
                    f"prometheus exited with code {code} before it was ready on {url}:\n{self._log_tail()}"
                )
            if self._is_ready(url) and self._serves_our_data(url):
                break
            if time.perf_counter() > deadline:
                self.stop()
                raise LocalPrometheusError(
                    f"prometheus was not ready on {url} within {timeout_s:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.05)
        self.ready_s = time.perf_counter() - t0
        self.port, self.url = port, url
        log.info(
            "local prometheus ready",
            extra={"url": url, "pid": self._proc.pid, "backfill_s": self.backfill_s, "ready_s": self.ready_s},
        )
        return url

    @staticmethod
    def _is_ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _serves_our_data(self, url: str) -> bool:
        """Whoever answers on the port is our process, not another server holding it."""
        try:
            with urllib.request.urlopen(f"{url}/api/v1/status/flags", timeout=1.0) as resp:
                flags = json.load(resp).get("data", {})
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return Path(flags.get("storage.tsdb.path", "")).resolve() == self.data_dir.resolve()

    def _log_tail(self) -> str:
        try:
            return _tail(self._log_path.read_text(errors="replace"))
        except OSError:
            return "(no output)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # pgid == pid: start_new_session
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.info("local prometheus stopped", extra={"url": self.url, "pid": proc.pid})

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
