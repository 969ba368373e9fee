"""The model's state kept the version its alias served, not which alias (and registered
model) that was. A configuration that names another alias (`champion` -> `prod`, after a
restart or a reload) diffed the new alias against the old one's version: a "deploy" from
v2 to v1 that nobody made, announced, blamed for the next incident, and rolled back, which
moved the `prod` alias onto v2, a version it never served. A change of alias or registered
model is now a first sight of the new one, as for a new model."""
from __future__ import annotations

from typing import Any

from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config, serving_registry


def test_a_renamed_alias_is_a_first_sight_not_a_deploy_nor_a_rollback(tmp_path: Any) -> None:
    reg = serving_registry(version="2")  # `champion` serves v2 (registered a month ago) ...
    reg.aliases[(MODEL, "prod")] = "1"  # ... and `prod` v1
    old = make_vigil(make_config(tmp_path), registry=reg)
    for k in range(3):
        old.run_cycle(MODEL, T0 - 600 + 60 * k)
    new = make_vigil(make_config(tmp_path, models=[model_config(alias="prod")]),
                     prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg)
    for k in range(6):
        new.run_cycle(MODEL, T0 + 60 * k)
    assert [(d.version, d.previous_version, d.source) for d in new.store.deploys(MODEL)] == \
        [("2", None, "observed"), ("1", None, "observed")]
    assert reg.aliases[(MODEL, "prod")] == "1" and reg.moves == [], reg.moves
    assert not [m for m in new.store.outbox_for_prefix("deploy") if m.payload.get("version") == "1"]


def test_a_rollback_after_a_renamed_alias_never_goes_to_a_version_only_the_old_alias_served(tmp_path: Any) -> None:
    # `champion` served v2 cleanly (known good); the config now names `prod`, which served
    # v1 when first seen, and a bad v3 goes out on it: the rollback took the old alias's
    # known good v2 (a version `prod` never served) over v1, the one before the deploy.
    from monitor.store.intents import mark_clean

    reg = serving_registry(version="2", versions=("1", "2"))
    reg.aliases[(MODEL, "prod")] = "1"
    old = make_vigil(make_config(tmp_path), registry=reg)
    old.run_cycle(MODEL, T0 - 900)
    with old.store.tx() as s:  # v2 served `champion` for a day of clean cycles
        for k in range(old.config.policy_for(old.config.model(MODEL)).rollback.known_good_after_cycles):
            mark_clean(s, MODEL, "2", T0 - 900 + k)
    new = make_vigil(make_config(tmp_path, models=[model_config(alias="prod")]),
                     prometheus=incident_prometheus(bad_from=T0 + 30), registry=reg)
    new.run_cycle(MODEL, T0 - 300)
    reg.add_version(MODEL, "3", created_at=T0 - 60)
    reg.aliases[(MODEL, "prod")] = "3"
    for k in range(8):
        new.run_cycle(MODEL, T0 + 60 * k)
    assert (MODEL, "prod", "2") not in reg.moves, reg.moves
    assert reg.aliases[(MODEL, "prod")] == "1", reg.moves
