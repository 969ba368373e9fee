"""A guard's refusal of Vigil's own rollback and the incident's message. The message is
edited when the refusal changes its advice (tests/unit/monitor/test_deploy_during_open_incident.py:
v3 after Vigil's rollback of v2, refused by the cool-down), never when the page already says
what to do: with automatic rollback off or refused for low confidence, editing it right after
it was sent (a chat.update, and the receivers' updates) told nobody anything new."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from alerts.outbox import MessageKind
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


@pytest.mark.parametrize("guard, rollback", [("disabled", {"enabled": False}),
                                             ("confidence", {"min_confidence": 1.0})])
def test_an_opening_page_whose_rollback_is_refused_is_not_edited(tmp_path: Any, guard: str,
                                                                  rollback: dict[str, Any]) -> None:
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "rollback": rollback})
    reg = serving_registry()
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300, T0):
        vigil.run_cycle(MODEL, t)
    [row] = vigil.store.incidents(model=MODEL)
    assert row.severity == "critical" and reg.moves == []
    refused = [a.detail for a in vigil.store.actions(incident_id=row.id) if a.status == "refused"]
    assert refused == [f"guard: {guard}"], refused  # the refusal is recorded...
    sent = Counter(r.key for r in vigil.store.outbox_for_prefix(f"incident:{row.id}")
                   if r.kind == MessageKind.INCIDENT)
    assert sent and set(sent.values()) == {1}, sent  # ...and each channel has its page, not an edit after it
