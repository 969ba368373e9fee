"""SQLite allows one daemon per store file: a second one is refused with a clear error, and
the lock of a daemon killed with SIGKILL is free at once (the kernel drops the flock)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.replicas import AnotherDaemonRunning, single_daemon_lock

REPO = Path(__file__).resolve().parents[2]


def test_a_second_daemon_on_the_same_file_is_refused_with_the_holders_pid(tmp_path):
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    with single_daemon_lock(url) as held:
        assert held.held and held.path == tmp_path / "vigil.db.lock"
        with pytest.raises(AnotherDaemonRunning) as refused:
            single_daemon_lock(url)
        msg = str(refused.value)
        assert str(tmp_path / "vigil.db") in msg and f"pid {os.getpid()}" in msg and "PostgreSQL" in msg
    with single_daemon_lock(url) as again:  # released on leaving the block
        assert again.held


def test_the_lock_of_a_killed_daemon_is_free_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom monitor.replicas import single_daemon_lock\n"
         f"lock = single_daemon_lock({url!r})\nprint('locked', flush=True)\ntime.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(AnotherDaemonRunning, match=f"pid {holder.pid}"):
            single_daemon_lock(url)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with single_daemon_lock(url) as lock:  # no stale lock left to clean up by hand
            assert lock.held
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true",
                                 "postgresql+psycopg://vigil@127.0.0.1:5432/vigil"])
def test_in_memory_sqlite_and_postgresql_take_no_lock(url):
    with single_daemon_lock(url) as a, single_daemon_lock(url) as b:
        assert not a.held and not b.held


def test_a_relative_path_locks_the_same_file_as_the_absolute_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with single_daemon_lock("sqlite:///vigil.db"), pytest.raises(AnotherDaemonRunning):
        single_daemon_lock(f"sqlite:///{tmp_path / 'vigil.db'}")
