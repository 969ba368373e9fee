"""A stop signal repeated at once (a group kill) is one stop; a second one asked later, or
another signal, still stops waiting (the documented way out of a stuck drain)."""
from __future__ import annotations

import signal
import threading

import pytest

from monitor import shutdown
from monitor.shutdown import DUPLICATE_S, StopSignals


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(shutdown.time, "monotonic", lambda: now[0])
    return now


def test_the_same_signal_again_at_once_is_the_same_stop(clock):
    s = StopSignals(threading.Event())
    s._on_stop(signal.SIGTERM, None)
    clock[0] += 0.001  # `timeout`: the child, then its group
    s._on_stop(signal.SIGTERM, None)
    assert s.stop.is_set() and not s.force.is_set()


def test_a_second_signal_asked_later_stops_waiting(clock):
    s = StopSignals(threading.Event())
    s._on_stop(signal.SIGTERM, None)
    clock[0] += DUPLICATE_S + 0.5
    s._on_stop(signal.SIGTERM, None)
    assert s.force.is_set()


def test_another_signal_at_once_stops_waiting(clock):
    s = StopSignals(threading.Event())
    s._on_stop(signal.SIGTERM, None)
    clock[0] += 0.1
    s._on_stop(signal.SIGINT, None)
    assert s.force.is_set()
