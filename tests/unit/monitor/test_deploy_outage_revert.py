"""A move made while the registry was unreachable is seen when the poll reads it again and
dated then. If an incident opened during that outage, the poll cannot tell a deploy made
before the trouble from a person's revert made because of it. It was recorded as a deploy
("registry"): with the registry back within the onset's slack, the person's revert (v2 ->
v1) became the incident's top suspect, and Vigil's automatic rollback brought the bad v2
back. A move back to an older version whose window (last read -> now) spans the opening
of the open incident, because polls failed in between, is now a response, as the same
revert is when the registry stays up. A move forward seen so stays a suspect
(tests/integration/test_rollback_deploy_seen_late.py)."""
from __future__ import annotations

from typing import Any

from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


def _cycles(tmp_path: Any, *, revert_at: float, back_at: float) -> tuple[Any, Any]:
    reg = serving_registry(version="2")  # v2 has served for a month: no suspect of its own
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg)
    for t in range(int(T0), int(T0 + 600), 60):
        reg.down = not (t < T0 + 120 or t >= back_at)  # read twice, then down
        if revert_at <= t < revert_at + 60:  # the person reverts once
            reg.aliases[(MODEL, "champion")] = "1"
        vigil.run_cycle(MODEL, float(t))
    return vigil, reg


def test_a_revert_made_during_a_registry_outage_that_hid_the_incidents_opening_is_no_suspect(tmp_path: Any) -> None:
    vigil, reg = _cycles(tmp_path, revert_at=T0 + 200, back_at=T0 + 300)
    [row] = vigil.store.incidents(model=MODEL)
    assert row.opened_at < T0 + 200  # the incident opened while the registry was down, before the revert
    assert [(d.version, d.previous_version, d.source) for d in vigil.store.deploys(MODEL)][-1:] == \
        [("1", "2", "response")]
    row = vigil.store.incident(row.id)
    assert "deploy" not in [c["kind"] for c in row.causes], row.causes
    assert (MODEL, "champion", "2") not in reg.moves  # the bad version never rolled back in
    assert reg.aliases[(MODEL, "champion")] == "1"


def test_a_move_read_before_the_incident_opened_stays_a_deploy(tmp_path: Any) -> None:
    # The registry was down, but came back (and read the move) before any incident: a deploy.
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    vigil.run_cycle(MODEL, T0)
    reg.down = True
    vigil.run_cycle(MODEL, T0 + 60)
    reg.down, reg.aliases[(MODEL, "champion")] = False, "1"
    vigil.run_cycle(MODEL, T0 + 120)
    assert [(d.version, d.source) for d in vigil.store.deploys(MODEL)][-1:] == [("1", "registry")]


def test_a_revert_during_an_outage_that_began_right_after_vigil_first_read_the_alias_is_no_suspect(
        tmp_path: Any) -> None:
    # The registry went down right after the poll that first read the alias (a start, or a
    # recorded move): no poll had confirmed it since, and the person's revert became the top
    # suspect, the rollback's target the bad v2.
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg)
    for t in range(int(T0), int(T0 + 600), 60):
        reg.down = T0 < t < T0 + 300
        if T0 + 200 <= t < T0 + 260:
            reg.aliases[(MODEL, "champion")] = "1"
        vigil.run_cycle(MODEL, float(t))
    [row] = vigil.store.incidents(model=MODEL)
    assert row.opened_at < T0 + 200
    assert [(d.version, d.previous_version, d.source) for d in vigil.store.deploys(MODEL)][-1:] == \
        [("1", "2", "response")]
    assert "deploy" not in [c["kind"] for c in vigil.store.incident(row.id).causes]
    assert (MODEL, "champion", "2") not in reg.moves and reg.aliases[(MODEL, "champion")] == "1"


def test_a_revert_made_while_the_daemon_restarted_during_the_outage_is_no_suspect(tmp_path: Any) -> None:
    # The same revert, but the daemon restarted (a rollout, an OOM kill, another replica
    # taking the model over) while the registry was down: the new process had no memory of
    # the failed polls, read the revert as a deploy made at its first read, and the
    # automatic rollback brought the bad v2 back over the person's revert.
    reg = serving_registry(version="2")
    cfg = make_config(tmp_path)
    before = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg)
    for t in range(int(T0), int(T0 + 300), 60):
        reg.down = t >= T0 + 120
        if T0 + 200 <= t < T0 + 260:
            reg.aliases[(MODEL, "champion")] = "1"
        before.run_cycle(MODEL, float(t))
    before.close()
    reg.down = False  # MLflow answers again just as the restarted daemon starts
    after = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg, start=T0 + 300)
    for t in range(int(T0 + 300), int(T0 + 600), 60):
        after.run_cycle(MODEL, float(t))
    [row] = after.store.incidents(model=MODEL)
    assert row.opened_at < T0 + 200
    assert [(d.version, d.previous_version, d.source) for d in after.store.deploys(MODEL)][-1:] == \
        [("1", "2", "response")]
    assert "deploy" not in [c["kind"] for c in after.store.incident(row.id).causes]
    assert (MODEL, "champion", "2") not in reg.moves and reg.aliases[(MODEL, "champion")] == "1"


def test_a_revert_first_read_by_a_replica_that_had_the_model_before_is_no_suspect(tmp_path: Any) -> None:
    # Replica A read the alias, lost the model to replica B (whose cycles opened the
    # incident), and took it back after a person's revert: A's memory of its old read said
    # the alias was confirmed before the incident, so the revert was a suspect deploy and
    # the automatic rollback brought the bad v2 back.
    reg = serving_registry(version="2")
    cfg = make_config(tmp_path)
    a = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg)
    b = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg)
    a.run_cycle(MODEL, T0)
    for t in (T0 + 60, T0 + 120, T0 + 180):
        b.run_cycle(MODEL, t)
    reg.aliases[(MODEL, "champion")] = "1"  # the person's revert, at T0 + 200
    for t in (T0 + 240, T0 + 300, T0 + 360):
        a.run_cycle(MODEL, t)
    [row] = a.store.incidents(model=MODEL)
    assert row.opened_at < T0 + 200
    assert [(d.version, d.previous_version, d.source) for d in a.store.deploys(MODEL)][-1:] == \
        [("1", "2", "response")]
    assert "deploy" not in [c["kind"] for c in a.store.incident(row.id).causes]
    assert (MODEL, "champion", "2") not in reg.moves and reg.aliases[(MODEL, "champion")] == "1"
