"""The incident message's suggested action after a rollback, once the alias moved on outside
Vigil (CI or the MLflow UI set it to v3): it must not go on saying "rolled back to v1 ...
investigate v2" while v3 serves."""
from __future__ import annotations

import time

from alerts.outbox import MessageKind
from monitor.cycle.rollback_ask import RollbackAsk
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


def _last_suggestion(vigil, incident_id: int) -> str:
    rows = [r for r in vigil.store.outbox.for_prefix(f"incident:{incident_id}") if r.kind == MessageKind.INCIDENT]
    return str(rows[-1].payload["suggested_action"])


def test_a_move_outside_vigil_after_a_rollback_is_what_the_message_says_serves(tmp_path) -> None:
    cfg = make_config(tmp_path, policy={"rollback": {"enabled": False}})
    registry = serving_registry(versions=("1", "2", "3"))
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry)
    m = cfg.model(MODEL)
    vigil.deploys.poll(m, time.time() - 7200)  # v1 serves
    registry.aliases[(MODEL, "champion")] = "2"
    vigil.deploys.poll(m, time.time() - 3600)  # v2 replaced it
    incident_id = vigil.run_cycle(MODEL, T0).incident_id
    assert incident_id is not None
    done = vigil.operator.rollback(RollbackAsk(m, "1", "CTR -10% since v2", "api:alice", incident_id, time.time()))
    assert done.status == "done", done
    assert _last_suggestion(vigil, incident_id).startswith("api:alice rolled back to v1.")
    registry.aliases[(MODEL, "champion")] = "3"  # CI promotes v3 through MLflow, not through Vigil
    vigil.deploys.poll(m, time.time())
    vigil.operator.acknowledge(incident_id, "api:bob", time.time())  # the message is drawn again
    text = _last_suggestion(vigil, incident_id)
    assert "investigate v2" not in text and "v3" in text, text
