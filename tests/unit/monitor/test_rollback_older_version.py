"""Vigil installed while v2 serves (its store never saw v1 serve): a person's rollback to
v1 was recorded as a *promotion*: the incident said they "moved the model on to v1", the
move became a deploy the incident could blame (v1 as a suspect of the very regression it
answers) and it did not settle the incident's automatic rollback. A move to an older
version than the one it replaces is a rollback, served before or not; a never-served
newer one (a challenger promoted through the rollback API) stays a promotion."""
from __future__ import annotations

import pytest

from monitor.cycle.rollback_ask import RollbackAsk
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry


@pytest.mark.parametrize("serving, to, kind", [("2", "1", "rollback"), ("1", "2", "promotion")])
def test_a_move_to_an_older_version_is_a_rollback_even_if_never_seen_serving(tmp_path, serving, to, kind):
    cfg = make_config(tmp_path, models=[model_config(kpis=[], slos=[])])
    registry = serving_registry(version=serving)
    vigil = make_vigil(cfg, registry=registry, notifiers={})
    vigil.run_cycle(MODEL, T0)  # first sight of the serving version
    outcome = vigil.operator.rollback(RollbackAsk(cfg.model(MODEL), to, "bad deploy", "cli:operator", None, T0 + 30))
    assert outcome.status == "done"
    assert [a.kind for a in vigil.store.actions(model=MODEL)] == [kind]
    (event,) = [d for d in vigil.store.deploys(MODEL) if d.at > T0]
    assert (event.version, event.source) == (to, kind)
