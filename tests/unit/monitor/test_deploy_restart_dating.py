"""A move of the alias made while the daemon was down (a rollout, an OOM kill, a takeover by
another replica) is first read by a process that never read the alias: like a move read
after failed polls, it is dated by the registry (tests/unit/monitor/test_deploy_outage_dating.py).
It was dated when read: a deploy made during a long restart was no suspect at all, and a
person's fix forward read within the onset's slack became the top suspect, which the
automatic rollback undid (the bad version back)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry
from tests.unit.monitor.test_deploy_outage_dating import _run as run_minutes
from tests.unit.monitor.test_deploy_outage_dating import assert_v2_dated_blamed_and_rolled_back


def _run(vigil: Any, reg: Any, start: float, end: float, moves: dict[float, tuple[str, float]]) -> None:
    run_minutes(vigil, reg, start, end, (0.0, 0.0), moves)  # the registry answers throughout


def _daemon(tmp_path: Any) -> tuple[Any, Callable[[float], Any]]:
    """The registry (v1 serving for a month) and a way to start a daemon process at a time,
    every process on the same config and store; the model breaks at T0 - 600."""
    reg, cfg, prom = serving_registry(version="1"), make_config(tmp_path), incident_prometheus(bad_from=T0 - 600)
    return reg, lambda at: make_vigil(cfg, prometheus=prom, registry=reg, start=at)


def test_a_deploy_made_while_the_daemon_was_down_is_dated_by_its_registration_and_rolled_back(
        tmp_path: Any) -> None:
    reg, start = _daemon(tmp_path)
    before = start(T0 - 1800)
    _run(before, reg, T0 - 1800, T0 - 1200, {})
    before.close()
    # Down from T0 - 1200 to T0 + 300: CI registers v2 at T0 - 900 and sets it at T0 - 840;
    # the model breaks at T0 - 600.
    reg.add_version(MODEL, "2", created_at=T0 - 900)
    reg.aliases[(MODEL, "champion")] = "2"
    after = start(T0 + 300)
    _run(after, reg, T0 + 300, T0 + 900, {})
    assert_v2_dated_blamed_and_rolled_back(after, reg, T0 - 900)


def test_a_fix_forward_made_while_the_daemon_restarted_is_no_suspect_and_never_rolled_back(
        tmp_path: Any) -> None:
    reg, start = _daemon(tmp_path)
    before = start(T0 - 1800)
    # v2 goes out at T0 - 960 and breaks the model at T0 - 600; the incident opens.
    _run(before, reg, T0 - 1800, T0 - 420, {T0 - 960: ("2", T0 - 1000)})
    before.close()
    [row] = before.store.incidents(model=MODEL)
    assert row.opened_at < T0 - 450
    # The daemon restarts; meanwhile a person registers the fix v3 and sets it at T0 - 420.
    reg.add_version(MODEL, "3", created_at=T0 - 450)
    reg.aliases[(MODEL, "champion")] = "3"
    after = start(T0 - 360)
    _run(after, reg, T0 - 360, T0 + 300, {})
    assert [(d.version, d.previous_version, d.source) for d in after.store.deploys(MODEL)][-1] == \
        ("3", "2", "response")
    causes = after.store.incident(row.id).causes
    assert "3" not in [c["evidence"].get("version") for c in causes if c["kind"] == "deploy"], causes
    assert (MODEL, "champion", "2") not in reg.moves, reg.moves  # the bad version never came back
    assert reg.aliases[(MODEL, "champion")] == "3"


def test_a_version_registered_long_before_the_restart_is_dated_when_read_not_at_its_registration(
        tmp_path: Any) -> None:
    # v2 was registered hours ago, while the daemon read v1 on the alias; CI sets it during a
    # restart. The move was made after the previous process's last cycle, not at the
    # registration (which would date it before the suspect window: a bad deploy unblamed).
    reg, start = _daemon(tmp_path)
    before = start(T0 - 14400)
    before.run_cycle(MODEL, T0 - 14400)
    reg.add_version(MODEL, "2", created_at=T0 - 10800)
    before.run_cycle(MODEL, T0 - 720)
    before.close()
    reg.aliases[(MODEL, "champion")] = "2"  # at T0 - 700
    after = start(T0 - 660)
    _run(after, reg, T0 - 660, T0 + 300, {})
    assert_v2_dated_blamed_and_rolled_back(after, reg, T0 - 660)
