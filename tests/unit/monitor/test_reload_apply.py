"""What a SIGHUP reload says it did is what it did (monitor/daemon.py `_reload`)."""
from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.daemon import Runtime, _reload, build_scheduler
from tests.helpers_vigil import incident_prometheus, make_config, make_vigil
from tests.unit.monitor.test_reload import write


def test_a_reload_whose_scheduler_changes_fail_says_it_was_applied_only_in_part(tmp_path, caplog, monkeypatch):
    """The new configuration was swapped in, then a scheduler change raised: the daemon ran
    the new thresholds on the old schedule while the log said "keeping the running
    configuration" and /metrics counted the reload as refused."""
    runtime = Runtime(make_vigil(make_config(tmp_path), prometheus=incident_prometheus(), notifiers={}),
                      write(tmp_path / "vigil.yaml", tmp_path, schedule={"interval": "30s"},
                            policy={"resolve_after_cycles": 5}))
    scheduler: BackgroundScheduler = build_scheduler(runtime)

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("jobstore unavailable")

    monkeypatch.setattr(scheduler, "reschedule_job", broken)
    metrics = runtime.vigil.metrics
    with caplog.at_level(logging.INFO, logger="vigil.daemon"):
        _reload(runtime, scheduler)
    assert runtime.vigil.config.policy.resolve_after_cycles == 5, "the new configuration runs"
    assert "keeping the running configuration" not in caplog.text, caplog.text
    assert "jobstore unavailable" in caplog.text
    value = metrics.registry.get_sample_value
    assert value("vigil_config_reloads_total", {"result": "refused"}) in (None, 0.0)
    assert value("vigil_config_reloads_total", {"result": "partial"}) == 1.0
    assert value("vigil_config_last_reload_successful") == 0.0, "an alert rule must catch it"
