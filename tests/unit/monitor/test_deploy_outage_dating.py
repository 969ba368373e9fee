"""A move of the alias first read after the registry was unreachable for longer than the
onset's 5-minute slack was dated when it was seen, not when it was made:
- a deploy made during the outage, before the trouble began, was dated after the onset's
  slack and was no suspect at all (nothing to roll back, the incident blamed nothing);
- a person's fix forward (a version registered after the incident opened, then set on the
  alias) read within the slack became the incident's top suspect, and the automatic
  rollback put the bad version back.
Such a move is now dated by what the registry holds: Vigil's own record of the move (the
`vigil.alias.<alias>.set_at` tag) or the version's registration, when either falls inside
the unread window; a move the registry dates after the incident opened answers it."""
from __future__ import annotations

from typing import Any

from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


def _run(vigil: Any, reg: Any, start: float, end: float, down: tuple[float, float],
         moves: dict[float, tuple[str, float]]) -> None:
    """Cycles every minute on [start, end); the registry is down on [down); at a time in
    `moves` a version (registered at the given time) is set on the alias, by hand."""
    for t in range(int(start), int(end), 60):
        reg.down = down[0] <= t < down[1]
        if float(t) in moves:
            version, registered = moves[float(t)]
            reg.add_version(MODEL, version, created_at=registered)
            reg.aliases[(MODEL, "champion")] = version
        vigil.run_cycle(MODEL, float(t))


def assert_v2_dated_blamed_and_rolled_back(vigil: Any, reg: Any, at: float) -> None:
    """The deploy of v2 (over v1) is dated `at`, the incident's top cause, and rolled back."""
    [deploy] = [(d.version, d.previous_version, d.at) for d in vigil.store.deploys(MODEL) if d.version == "2"]
    assert deploy == ("2", "1", at)
    [row] = vigil.store.incidents(model=MODEL)
    causes = vigil.store.incident(row.id).causes
    assert causes[0]["kind"] == "deploy" and causes[0]["evidence"]["version"] == "2", causes
    assert reg.aliases[(MODEL, "champion")] == "1", reg.moves  # the bad v2 rolled back


def test_a_deploy_made_during_a_long_registry_outage_is_dated_by_its_registration_and_rolled_back(
        tmp_path: Any) -> None:
    reg = serving_registry(version="1")
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 - 600), registry=reg)
    # MLflow stops answering at T0 - 1200 for 25 minutes; CI registers v2 at T0 - 900 and
    # sets it at T0 - 840; the model breaks at T0 - 600.
    _run(vigil, reg, T0 - 1800, T0 + 600, (T0 - 1200, T0 + 300), {T0 - 840: ("2", T0 - 900)})
    assert [d.source for d in vigil.store.deploys(MODEL) if d.version == "2"] == ["registry"]
    assert_v2_dated_blamed_and_rolled_back(vigil, reg, T0 - 900)


def test_a_fix_forward_made_during_a_long_registry_outage_is_no_suspect_and_never_rolled_back(
        tmp_path: Any) -> None:
    reg = serving_registry(version="1")
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 - 600), registry=reg)
    # v2 goes out at T0 - 960 (read), breaks the model at T0 - 600; MLflow stops answering at
    # T0 - 900 for 10 minutes; a person registers the fix v3 at T0 - 450 and sets it at T0 - 420.
    _run(vigil, reg, T0 - 1800, T0 + 600, (T0 - 900, T0 - 300),
         {T0 - 960: ("2", T0 - 1000), T0 - 420: ("3", T0 - 450)})
    [row] = vigil.store.incidents(model=MODEL)
    assert row.opened_at < T0 - 450  # the fix came after the incident opened
    assert [(d.version, d.previous_version, d.source) for d in vigil.store.deploys(MODEL)][-1] == \
        ("3", "2", "response")
    causes = vigil.store.incident(row.id).causes
    assert "3" not in [c["evidence"].get("version") for c in causes if c["kind"] == "deploy"], causes
    assert (MODEL, "champion", "2") not in reg.moves, reg.moves  # the bad version never came back
    assert reg.aliases[(MODEL, "champion")] == "3"
