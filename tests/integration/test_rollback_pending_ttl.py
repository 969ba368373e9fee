"""A rollback still pending past `policy.rollback.pending_ttl` (30 min by default), Vigil's own
or a person's, is abandoned, nothing moved: a daemon killed right after recording one and
started again 6 h later no longer moves the alias for a model long healthy. Within the TTL,
a crash's half-done rollback is still finished (test_rollback_crash)."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, parse_config
from monitor.cycle.rollback_ask import RollbackAsk
from monitor.failpoints import ENV, FailPointError
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

BAD_FROM = T0 - 300
ADVICE = ", nothing moved; roll back by hand or ask again"


def test_a_rollback_recorded_before_a_kill_is_abandoned_when_the_daemon_returns_hours_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path)
    reg = serving_registry()
    prom = incident_prometheus(bad_from=BAD_FROM, bad_until=T0 + 60)
    vigil = make_vigil(cfg, registry=reg, prometheus=prom)
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300):
        vigil.run_cycle(MODEL, t)
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):
        vigil.run_cycle(MODEL, T0)
    monkeypatch.delenv(ENV)

    v2 = make_vigil(cfg, registry=reg, prometheus=prom, start=T0 + 6 * 3600)
    monkeypatch.setenv(ENV, "before_abandon=raise")  # fails again, while abandoning it (logged, not raised)
    v2.reconcile(T0 + 6 * 3600)
    monkeypatch.delenv(ENV)
    assert [a.status for a in v2.store.actions(model=MODEL)] == ["pending"]
    v2.reconcile(T0 + 6 * 3600)  # what `vigil run` does at start-up
    v2.run_cycle(MODEL, T0 + 6 * 3600)
    assert reg.moves == [] and reg.aliases[(MODEL, "champion")] == "2"
    [action] = v2.store.actions(model=MODEL)
    assert (action.status, action.detail) == ("failed", "abandoned: not done within 30 min "
                                                        "(policy.rollback.pending_ttl)" + ADVICE)
    assert [e.action for e in v2.store.audit_entries() if e.action.startswith("rollback.")] == [
        "rollback.requested", "rollback.failed"]


def test_a_persons_rollback_left_pending_by_a_kill_is_abandoned_after_the_ttl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "rollback": {"pending_ttl": "10m"}})
    reg = serving_registry(version="2")
    vigil = make_vigil(cfg, registry=reg)
    vigil.run_cycle(MODEL, T0)
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):  # killed once the intent is committed, nothing moved
        vigil.operator.rollback(RollbackAsk(cfg.model(MODEL), "1", "bad release", "api:alice", None, T0 + 10))
    monkeypatch.delenv(ENV)
    v2 = make_vigil(cfg, registry=reg, start=T0 + 11 * 60)
    v2.reconcile(T0 + 11 * 60)  # back 11 min after the ask
    assert reg.moves == []
    [action] = v2.store.actions(model=MODEL)
    assert (action.status, action.detail) == ("failed", "abandoned: not done within 10 min "
                                                        "(policy.rollback.pending_ttl)" + ADVICE)


@pytest.mark.parametrize("ttl", [0, "-5m", "soon"])
def test_a_pending_ttl_that_is_not_a_positive_duration_is_refused_naming_it(ttl: object) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"policy": {"rollback": {"pending_ttl": ttl}}, "models": [{"name": "m"}]})
    errors = dict(e.value.errors)
    assert list(errors) == ["policy.rollback.pending_ttl"], errors
