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
from alerts.slack_text import action_line
from monitor.sources.errors import SourceUnavailable
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


def opened(tmp_path: Any, rollback: dict[str, Any]) -> tuple[Vigil, Any]:
    """v1 served; v2 took the alias 15 min before the cycle at T0 that opens a critical incident
    blamed on it, with `rollback` as the policy's automatic rollback."""
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "rollback": rollback})
    reg = serving_registry()
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300, T0):
        vigil.run_cycle(MODEL, t)
    [row] = vigil.store.incidents(model=MODEL)
    assert row.severity == "critical" and reg.moves == []
    return vigil, row


@pytest.mark.parametrize("guard, rollback", [("disabled", {"enabled": False}),
                                             ("confidence", {"min_confidence": 1.0})])
def test_an_opening_page_whose_rollback_is_refused_is_not_edited(tmp_path: Any, guard: str,
                                                                  rollback: dict[str, Any]) -> None:
    vigil, row = opened(tmp_path, rollback)
    refused = [a.detail for a in vigil.store.actions(incident_id=row.id) if a.status == "refused"]
    assert refused == [f"guard: {guard}"], refused  # the refusal is recorded...
    sent = Counter(r.key for r in vigil.store.outbox_for_prefix(f"incident:{row.id}")
                   if r.kind == MessageKind.INCIDENT)
    assert sent and set(sent.values()) == {1}, sent  # ...and each channel has its page, not an edit after it


def test_a_refused_rollback_records_the_version_serving_when_it_was_refused(tmp_path: Any) -> None:
    """It was stored from None ("Rollback vNone → v1: refused" in the incident's message), so
    the record did not say what served when Vigil said no."""
    vigil, row = opened(tmp_path, {"enabled": False})
    [refused] = [a for a in vigil.store.actions(incident_id=row.id) if a.status == "refused"]
    assert (refused.from_version, refused.to_version) == ("2", "1")
    line = action_line(refused.to_dict())
    assert "v2 → v1" in line and "None" not in line, line


def test_a_refusal_while_the_registry_cannot_be_read_records_no_version_and_says_none(tmp_path: Any) -> None:
    """Each cycle's poll reads the alias; the registry goes away before the refusal is recorded:
    what serves then is unknown (None), shown as unknown, not as "vNone"."""
    reg = serving_registry()
    read, reads = reg.alias_version, {"n": 0}

    def poll_only(name: str, alias: str) -> str | None:
        reads["n"] += 1
        if reads["n"] > 1:  # the cycle's poll answered; any later read in the cycle does not
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "connection refused")
        return read(name, alias)

    reg.alias_version = poll_only  # type: ignore[method-assign]
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "rollback": {"enabled": False}})
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
    for t in (T0 - 1200, T0 - 900, T0 - 600, T0 - 300, T0):
        reads["n"] = 0
        reg.aliases[(MODEL, "champion")] = "1" if t == T0 - 1200 else "2"
        vigil.run_cycle(MODEL, t)
    [row] = vigil.store.incidents(model=MODEL)
    [refused] = [a for a in vigil.store.actions(incident_id=row.id) if a.status == "refused"]
    assert refused.from_version is None, refused.from_version
    line = action_line(refused.to_dict())
    assert "None" not in line and "→ v1" in line, line
