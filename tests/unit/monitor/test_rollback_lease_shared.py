"""`vigil serve` drives rollbacks of different models at once, on its request threads, each holding
the SQLite store's single-daemon lock. That lock is a `flock`: a second open of the lock file in
the same process is refused as if a daemon held it. Taken per drive, the second model's rollback
was answered "the daemon (pid <serve's own>) moves it" with no daemon to move it; the process
takes it once, shares it, and the last drive to end releases it."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from monitor.cycle.rollback_lease import BesideDaemon, DaemonRunning
from monitor.replicas import AnotherDaemonRunning, single_daemon_lock


def test_two_drives_of_one_serve_process_share_the_lock_and_the_last_releases_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    serve = BesideDaemon(url, role="a `vigil serve` moving layers")
    inside, go = threading.Event(), threading.Event()
    got: list[str] = []

    def first() -> str:
        inside.set()
        assert go.wait(10)
        return "a moved"
    t = threading.Thread(target=lambda: got.append(serve.drive("a", first)), daemon=True)
    t.start()
    try:
        assert inside.wait(10)
        assert serve.drive("b", lambda: "b moved") == "b moved"  # not "left to the daemon" (its own pid)
        with pytest.raises(AnotherDaemonRunning, match="vigil serve"):  # b's end kept it for a's drive
            single_daemon_lock(url)
    finally:
        go.set()
        t.join(10)
    assert got == ["a moved"]
    with single_daemon_lock(url) as daemon:  # free once the last drive ended: a daemon starts
        assert daemon.held
        with pytest.raises(DaemonRunning):  # and an ask of serve's is left to it
            serve.drive("a", lambda: "moved beside the daemon")
