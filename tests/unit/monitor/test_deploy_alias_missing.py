"""A model whose registry name or alias is not in the registry (a typo in
models[].registry, an alias never set) had its deploys silently untracked: no deploy
suspect, no rollback target, and nothing said so. The poll says it, once per model."""
from __future__ import annotations

import logging

from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


def test_an_alias_the_registry_does_not_have_is_said_once(tmp_path, caplog):
    reg = serving_registry()
    del reg.aliases[(MODEL, "champion")]
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(), registry=reg)
    with caplog.at_level(logging.WARNING, logger="vigil.deploys"):
        for k in range(3):
            vigil.run_cycle(MODEL, T0 + 60 * k)
    said = [r for r in caplog.records if r.name == "vigil.deploys" and "deploys are not tracked" in r.getMessage()]
    assert len(said) == 1, caplog.text
    assert said[0].model == MODEL and said[0].alias == "champion"
    reg.aliases[(MODEL, "champion")] = "1"  # set at last: found, and said again if it goes
    vigil.run_cycle(MODEL, T0 + 180)
    del reg.aliases[(MODEL, "champion")]
    with caplog.at_level(logging.WARNING, logger="vigil.deploys"):
        vigil.run_cycle(MODEL, T0 + 240)
    said = [r for r in caplog.records if r.name == "vigil.deploys" and "deploys are not tracked" in r.getMessage()]
    assert len(said) == 2
