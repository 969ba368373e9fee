"""Provisioning after reloads: one at a time, the newest configuration last."""
from __future__ import annotations

import threading
from typing import Any

import monitor.grafana.provision as provision
from monitor.grafana.background import provision_in_background


def test_quick_reloads_provision_one_at_a_time_and_the_newest_configuration_last(monkeypatch):
    """Two quick SIGHUPs each started a provisioning thread; against a slow Grafana the one
    for the older file could finish second and put back the dashboards the newer one had
    replaced (a model's panels as they were before the edit)."""
    first_started, release = threading.Event(), threading.Event()
    done: list[str] = []
    running, most = [0], [0]
    guard = threading.Lock()

    def slow_provision(config: Any) -> None:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        first_started.set()
        release.wait(10)
        with guard:
            running[0] -= 1
        done.append(config)

    monkeypatch.setattr(provision, "provision_on_start", slow_provision)
    worker = provision_in_background("start-up")  # type: ignore[arg-type]
    assert first_started.wait(10)
    for name in ("reload 1", "reload 2"):
        provision_in_background(name)  # type: ignore[arg-type]
    release.set()
    worker.join(10)
    assert not worker.is_alive()
    assert most[0] == 1, "two provisionings ran against Grafana at once"
    assert done == ["start-up", "reload 2"], done
