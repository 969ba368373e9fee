"""The first sight of a model's alias (a daemon started after a deploy, a new store, a
`vigil replay --config` over a live registry) was dated min(version created, sighting):
a deploy made just before Vigil started was dated when the version was registered (days
ago), so it was no suspect for the incident that began right after it. It is dated by
Vigil's own record of the move (`vigil.alias.<alias>.set_at`) when that is credible, else
by the version's creation; never before the version existed, never after the sighting."""
from __future__ import annotations

from typing import Any

from monitor.sources.registry import alias_tag, format_timestamp
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

MONTH = 30 * 86400


def _moved(at: float, set_by: str = "ci-deployer", previous: str = "1") -> dict[str, str]:
    return {alias_tag("champion", "set_at"): format_timestamp(at), alias_tag("champion", "previous"): previous,
            alias_tag("champion", "set_by"): set_by}


def _first_sight(tmp_path: Any, *, created_at: float, tags: dict[str, str], t: float = T0) -> tuple[float, str]:
    tmp_path.mkdir(exist_ok=True)
    reg = serving_registry(version="2")
    reg.add_version(MODEL, "2", created_at=created_at, tags=tags)
    v = make_vigil(make_config(tmp_path), registry=reg)
    [event] = v.deploys.record(v.config.model(MODEL), "2", t)
    return event.at, event.source


def test_a_deploy_just_before_vigil_started_is_dated_by_its_record_and_is_the_suspect(tmp_path: Any) -> None:
    reg = serving_registry(version="2")
    reg.add_version(MODEL, "2", created_at=T0 - MONTH, tags=_moved(T0 - 900))
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 - 600), registry=reg)
    vigil.run_cycle(MODEL, T0)
    assert [(d.version, d.at, d.source) for d in vigil.store.deploys(MODEL)] == [("2", T0 - 900, "observed")]
    [row] = vigil.store.incidents(model=MODEL)
    assert [c["kind"] for c in row.causes][:1] == ["deploy"], row.causes


def test_a_record_in_the_future_or_before_the_version_existed_is_not_believed(tmp_path: Any) -> None:
    assert _first_sight(tmp_path / "a", created_at=T0 - MONTH, tags=_moved(T0 + 3600)) == (T0 - MONTH, "observed")
    assert _first_sight(tmp_path / "b", created_at=T0 - 600, tags=_moved(T0 - 7200)) == (T0 - 600, "observed")
    assert _first_sight(tmp_path / "c", created_at=T0 - 600, tags={}) == (T0 - 600, "observed")


def test_a_version_the_registry_dates_after_the_sighting_is_dated_at_the_sighting(tmp_path: Any) -> None:
    """MLflow's clock ahead of Vigil's (or a replay behind a live registry): the alias was
    seen serving the version at T0, so the deploy is no later than T0, never in the future."""
    assert _first_sight(tmp_path, created_at=T0 + 3600, tags={}) == (T0, "observed")


def _cycle_after(tmp_path: Any, previous: str) -> Any:
    """A cycle at T0 after Vigil's executor moved the alias to v2 from `previous` at T0 - 900,
    seen first (a new store), with an incident from T0 - 600."""
    reg = serving_registry(version="2")
    reg.add_version(MODEL, "2", created_at=T0 - MONTH, tags=_moved(T0 - 900, "vigil-rollback", previous))
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 - 600), registry=reg)
    vigil.run_cycle(MODEL, T0)
    return vigil


def test_a_first_seen_rollback_of_vigils_own_stays_a_rollback_and_no_suspect(tmp_path: Any) -> None:
    vigil = _cycle_after(tmp_path, "3")
    assert [(d.version, d.at, d.source) for d in vigil.store.deploys(MODEL)] == [("2", T0 - 900, "rollback")]
    [row] = vigil.store.incidents(model=MODEL)
    assert "deploy" not in [c["kind"] for c in row.causes], row.causes
    assert vigil.store.rollback_target(MODEL) is None  # nothing to roll "back" to


def test_a_first_seen_promotion_by_vigil_is_a_deploy_and_the_suspect(tmp_path: Any) -> None:
    """Vigil's alias executor tags every move it makes `vigil-rollback`, a canary promotion
    (v1 -> v2, forward) too; the store records that one as a promotion, which can be blamed.
    Seen first after a restart on a new store, it was a "rollback": no suspect, no rollback."""
    vigil = _cycle_after(tmp_path, "1")
    assert [(d.version, d.at, d.source) for d in vigil.store.deploys(MODEL)] == [("2", T0 - 900, "observed")]
    [row] = vigil.store.incidents(model=MODEL)
    assert [c["kind"] for c in row.causes][:1] == ["deploy"], row.causes
