"""A SIGHUP that changes `schedule.interval` on a replica sharing PostgreSQL: leases last
one interval and are renewed every third of one, as at start (monitor/ownership.py)."""
from __future__ import annotations

import time

from sqlalchemy import text

from monitor.daemon import Runtime, _reload, build_scheduler
from monitor.ownership import LeasedOwnership
from monitor.startup import take_ownership
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import MODEL, incident_prometheus, make_config, make_vigil
from tests.unit.monitor.test_reload import write


def lease_left(runtime: Runtime) -> float:
    """Seconds the database still gives MODEL's lease."""
    with runtime.vigil.store.engine.begin() as c:
        return float(c.execute(text("select expires_at - extract(epoch from clock_timestamp()) from model_leases "
                                    "where model = :m"), {"m": MODEL}).scalar_one())


def test_a_reload_that_changes_the_interval_retimes_the_leases_safely(tmp_path, postgres_url):
    """The lease heartbeat kept the start's period and TTL: after 3s -> 30s it renewed ten
    times as often as needed, and after 30s -> 3s a killed replica's models waited 40 s
    (not two intervals, 6 s) for a new owner. A longer interval must renew every lease for
    the longer TTL before renewals thin out (or the leases held lapse between them)."""
    url = fresh_schema_url(postgres_url)
    cfg = make_config(tmp_path, store={"url": url}, schedule={"interval": "3s", "lookback": "30m", "baseline": "1h"})
    path = tmp_path / "vigil.yaml"
    runtime = Runtime(make_vigil(cfg, prometheus=incident_prometheus(), notifiers={}), str(path))
    try:
        take_ownership(runtime)
        owner = runtime.owner
        assert isinstance(owner, LeasedOwnership)
        scheduler = build_scheduler(runtime)  # not started: the test ticks by hand
        owner.tick([MODEL])
        assert scheduler.get_job("leases").trigger.interval.total_seconds() == 1
        assert lease_left(runtime) <= 3

        write(path, tmp_path, store={"url": url}, schedule={"interval": "30s"})
        _reload(runtime, scheduler)
        assert scheduler.get_job("leases").trigger.interval.total_seconds() == 10
        assert (owner.renew_every, owner.membership.timing.lease_ttl) == (10, 30)
        assert lease_left(runtime) > 25, "renewed for the new TTL before the next renewal, 10 s away"
        time.sleep(3.2)  # past the old TTL, no tick: still ours, in the database and in our belief
        assert owner.token(MODEL) is not None and lease_left(runtime) > 0

        write(path, tmp_path, store={"url": url}, schedule={"interval": "3s"})
        _reload(runtime, scheduler)
        assert scheduler.get_job("leases").trigger.interval.total_seconds() == 1
        assert (owner.renew_every, owner.membership.timing.lease_ttl) == (1, 3)
        owner.tick([MODEL])
        assert 0 < lease_left(runtime) <= 3, "a killed replica's models move within two (new) intervals"
        value = runtime.vigil.metrics.registry.get_sample_value
        assert value("vigil_config_reloads_total", {"result": "applied"}) == 2
    finally:
        runtime.owner.close()
        runtime.vigil.store.close()
