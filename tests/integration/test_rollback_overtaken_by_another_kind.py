"""A rollback of the champion overtaken by a canary's action on the challenger.

An ask reads the newest intent as it begins; one recorded since and finished before the ask
is recorded answers it (two people pressing at once). A canary pull moves the challenger's
alias, not the champion's: it must not answer a person's rollback of the champion. It did,
whatever its kind: refused ("ended done first; nothing moved for this request"), or, when the
pull went to the version the person asked for, "done" while the champion still served the
bad version."""
from __future__ import annotations

from typing import Any

import pytest

from alerts.rollback import ActionStatus
from monitor.cycle.rollback_ask import CANARY_PULL
from monitor.cycle.rollback_intents import RollbackAsk
from monitor.store.intents import add_intent
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry


def _pull_finishes_during_the_read(v: Any, reg: Any, pulled_to: str) -> None:
    """The champion alias's first read (the ask has read the newest intent already) is when a
    canary pull of the challenger, v4 -> `pulled_to`, is recorded and finishes."""
    read = reg.alias_version
    done: list[bool] = []

    def alias_version(name: str, alias: str) -> str | None:
        if not done:
            done.append(True)
            with v.store.tx() as s:
                action = v.store.add_action(s, model=MODEL, kind=CANARY_PULL, incident_id=None, from_version="4",
                                            to_version=pulled_to, status=ActionStatus.DONE,
                                            reason="canary v4 failed: ctr", detail="pulled", actor="vigil",
                                            dry_run=False, at=T0)
                intent = add_intent(s, model=MODEL, incident_id=None, action_id=action.id, from_version="4",
                                    to_version=pulled_to, executors=["mlflow:challenger"], fencing_token=None,
                                    actor="vigil", reason="canary v4 failed", forced=False, max_attempts=1,
                                    next_attempt_at=T0, created_at=T0, updated_at=T0)
                intent.status, intent.detail = ActionStatus.DONE, "pulled"
        return read(name, alias)

    reg.alias_version = alias_version


@pytest.mark.parametrize("pulled_to", ["3", "2"], ids=["pull-to-the-champion", "pull-to-the-asked-version"])
def test_a_canary_pull_that_finished_first_does_not_answer_a_rollback_of_the_champion(tmp_path, pulled_to):
    cfg = make_config(tmp_path, models=[model_config(canary={"alias": "challenger", "window": "1h"})])
    reg = serving_registry(version="3", versions=("1", "2", "3", "4"))
    reg.aliases[(MODEL, "challenger")] = "4"
    v = make_vigil(cfg, registry=reg)
    _pull_finishes_during_the_read(v, reg, pulled_to)
    m = v.config.model(MODEL)
    out = v.rollbacks.request(RollbackAsk(m, "2", "v3 is bad", "api:alice", None, T0))
    assert (out.status, out.from_version, out.to_version) == ("done", "3", "2"), out
    assert reg.aliases[(MODEL, "champion")] == "2", reg.moves  # the champion moved, as asked
