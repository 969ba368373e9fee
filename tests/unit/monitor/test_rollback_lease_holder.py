"""A rollback asked of `vigil serve` (or of `vigil rollback` in a terminal) on a SQLite store while
the store's single-daemon lock is held by another process that is not a daemon: a `vigil rollback`
or a second `vigil serve` in the middle of its own move (they write their role into the lock file; a
daemon writes none). It was answered "the daemon (pid N) ... moves it at its next cycle" at once and
stayed pending, with no daemon to move it. Now it waits for that move to end (at most one move's
budget) and moves it; still held then, the answer names the holder and says no daemon moves it.

The holder here is this test's own open of the lock file: a `flock` is held by an open file
description, so the drive's open (another one) is refused exactly as another process's would be."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.cycle.rollback_lease import BesideDaemon
from monitor.replicas import single_daemon_lock
from monitor.startup import hold_no_lease
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, MemoryRegistry, make_config, make_vigil, serving_registry

OPERATOR = "olga-operator-token-4b1d2e"
TERMINAL = "a `vigil rollback` moving layers"
ASK = {"reason": "ctr down since v2", "to_version": "1"}


def _serve(tmp_path: Path, wait_s: float) -> tuple[Vigil, MemoryRegistry]:
    """`vigil serve` on the SQLite file (no cycles), v2 serving; it waits at most `wait_s` for a holder."""
    reg = serving_registry(version="2")
    token = {"name": "olga", "role": "operator", "token_sha256": hashlib.sha256(OPERATOR.encode()).hexdigest()}
    vigil = make_vigil(make_config(tmp_path, api={"tokens": [token]}), registry=reg)
    hold_no_lease(vigil)
    assert isinstance(vigil.fence, BesideDaemon)
    vigil.fence.wait_s = wait_s
    return vigil, reg


def _post(vigil: Vigil) -> tuple[float, int, dict[str, Any]]:
    """Seconds the answer took, its status code and body."""
    client = TestClient(create_app(vigil))
    started = time.monotonic()
    r = client.post(f"/v1/models/{MODEL}/rollback", json=ASK, headers={"Authorization": f"Bearer {OPERATOR}"})
    return time.monotonic() - started, r.status_code, r.json()


@contextmanager
def _held(url: str, role: str, for_s: float) -> Iterator[None]:
    """The store's lock held by another holder (`role`; "" for a daemon), released after `for_s`."""
    lock = single_daemon_lock(url, role=role)
    timer = threading.Timer(for_s, lock.release)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join(5)
        lock.release()


def test_a_rollback_asked_while_a_terminal_moves_another_model_waits_for_it_and_moves(tmp_path: Path) -> None:
    vigil, reg = _serve(tmp_path, wait_s=10.0)
    with _held(vigil.config.store.url, TERMINAL, for_s=1.0):
        took, code, body = _post(vigil)
    assert (code, body["status"]) == (200, "done"), body
    assert reg.aliases[(MODEL, "champion")] == "1"
    assert 0.8 <= took < 8.0, f"answered in {took:.1f} s: not after the terminal's move ended"


def test_the_wait_for_the_holder_does_not_spend_the_rollbacks_own_budget(tmp_path: Path) -> None:
    vigil, reg = _serve(tmp_path, wait_s=10.0)
    vigil.rollbacks.step_budget_s = 0.5  # the layers' calls; the holder's move takes longer than that
    with _held(vigil.config.store.url, TERMINAL, for_s=1.5):
        _took, code, body = _post(vigil)
    assert (code, body["status"]) == (200, "done"), body
    assert reg.aliases[(MODEL, "champion")] == "1"


def test_still_held_after_the_wait_the_answer_names_the_holder_and_no_daemon(tmp_path: Path) -> None:
    vigil, reg = _serve(tmp_path, wait_s=1.0)
    with _held(vigil.config.store.url, TERMINAL, for_s=30.0):
        took, code, body = _post(vigil)
    assert (code, body["status"]) == (202, "pending"), body
    detail = body["detail"]
    assert TERMINAL in detail and f"pid {os.getpid()}" in detail and "not a daemon" in detail, detail
    assert "the daemon" not in detail and "next cycle" not in detail, detail
    assert "vigil run" in detail and "cancel" in detail, detail
    assert 0.8 <= took < 5.0, f"answered in {took:.1f} s"
    assert reg.aliases[(MODEL, "champion")] == "2"
    daemon = make_vigil(vigil.config, registry=reg)  # `vigil run` started on the store: its start-up moves it
    daemon.reconcile(time.time())
    assert reg.aliases[(MODEL, "champion")] == "1"
    assert [a.status for a in daemon.store.actions(model=MODEL)] == ["done"]


def test_a_daemon_holding_the_store_is_left_the_rollback_at_once(tmp_path: Path) -> None:
    vigil, reg = _serve(tmp_path, wait_s=10.0)
    with _held(vigil.config.store.url, "", for_s=30.0):  # `vigil run`: no role in the lock file
        took, code, body = _post(vigil)
    assert (code, body["status"]) == (202, "pending"), body
    assert f"the daemon (pid {os.getpid()}" in body["detail"] and "next cycle" in body["detail"], body
    assert took < 5.0, f"waited {took:.1f} s (of 10) for a daemon, which never lets go"
    assert reg.aliases[(MODEL, "champion")] == "2"
