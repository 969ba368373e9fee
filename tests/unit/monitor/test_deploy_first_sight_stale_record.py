"""A first sight (a new store, a daemon started after a deploy) is dated by Vigil's own
record of the alias move on the version (`vigil.alias.<alias>.set_at`). That record stays
on the version when the alias leaves it: v3 promoted a month ago, rolled back to v2 half an
hour ago (v2's record says so), then set again by hand (no record) just before the model
broke. The stale month-old record dated the deploy a month back: no suspect, no rollback.
A record older than another version's record of the same alias is stale: the alias moved
onto this version after that one, and the first sight is dated no earlier."""
from __future__ import annotations

from typing import Any

from monitor.sources.registry import alias_tag, format_timestamp
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

MONTH = 30 * 86400


def _record(at: float, previous: str) -> dict[str, str]:
    return {alias_tag("champion", "set_at"): format_timestamp(at), alias_tag("champion", "previous"): previous,
            alias_tag("champion", "set_by"): "vigil-rollback"}


def test_a_version_set_again_by_hand_is_not_dated_by_its_stale_record(tmp_path: Any) -> None:
    reg = serving_registry(version="3", versions=("1", "2", "3"), registered_at=T0 - 2 * MONTH)
    reg.add_version(MODEL, "3", created_at=T0 - 2 * MONTH, tags=_record(T0 - MONTH, "2"))  # promoted, stale
    reg.add_version(MODEL, "2", created_at=T0 - 2 * MONTH, tags=_record(T0 - 1800, "3"))  # rolled back to v2
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 - 600), registry=reg)
    vigil.run_cycle(MODEL, T0)  # first sight: v3, set again by hand at T0 - 900
    [deploy] = vigil.store.deploys(MODEL)
    assert (deploy.version, deploy.at, deploy.source) == ("3", T0 - 1800, "observed")
    [row] = vigil.store.incidents(model=MODEL)
    assert [c["kind"] for c in row.causes][:1] == ["deploy"], row.causes


def test_a_record_newer_than_every_other_is_still_believed(tmp_path: Any) -> None:
    reg = serving_registry(version="3", versions=("1", "2", "3"), registered_at=T0 - 2 * MONTH)
    reg.add_version(MODEL, "2", created_at=T0 - 2 * MONTH, tags=_record(T0 - MONTH, "1"))
    reg.add_version(MODEL, "3", created_at=T0 - 2 * MONTH, tags=_record(T0 - 900, "2"))
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    vigil.run_cycle(MODEL, T0)
    assert [(d.version, d.at) for d in vigil.store.deploys(MODEL)] == [("3", T0 - 900)]


def test_a_stale_record_of_vigils_rollback_still_says_rollback(tmp_path: Any) -> None:
    """v2 rolled back to a month ago, v3 promoted half an hour ago, then v2 set again by hand
    (a revert): dated no earlier than v3's record, but still no suspect, as before."""
    reg = serving_registry(version="2", versions=("1", "2", "3"), registered_at=T0 - 2 * MONTH)
    reg.add_version(MODEL, "2", created_at=T0 - 2 * MONTH, tags=_record(T0 - MONTH, "3"))
    reg.add_version(MODEL, "3", created_at=T0 - 2 * MONTH, tags=_record(T0 - 1800, "2"))
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(bad_from=T0 - 600), registry=reg)
    vigil.run_cycle(MODEL, T0)
    assert [(d.version, d.at, d.source) for d in vigil.store.deploys(MODEL)] == [("2", T0 - 1800, "rollback")]
    [row] = vigil.store.incidents(model=MODEL)
    assert "deploy" not in [c["kind"] for c in row.causes], row.causes
