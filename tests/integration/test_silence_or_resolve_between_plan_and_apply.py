"""What changes the incident's messages after the cycle planned them and before it locked the
incident to write them: a Slack "Silence" press (a label silence) that committed in between
holds back the reminder planned before it, and an incident resolved in between (a removed
model's) is left resolved with nothing more sent, instead of failing the cycle."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import monitor.vigil as vigil_mod
from monitor.cycle.removed import resolve_removed
from monitor.store import silences
from monitor.store.intents import KnownGoodRow
from monitor.store.model_now import read_model_now
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration


def _vigil(tmp_path: Any) -> Vigil:
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "repeat_interval": "5m"})
    return make_vigil(cfg, prometheus=incident_prometheus())


def _before_apply(monkeypatch: pytest.MonkeyPatch, act: Callable[[], Any]) -> None:
    """`act` commits between the cycle's plan and its apply."""
    real = vigil_mod.apply_plan

    def act_then_apply(*a: Any, **k: Any) -> Any:
        act()
        return real(*a, **k)

    monkeypatch.setattr(vigil_mod, "apply_plan", act_then_apply)


def _replies(vigil: Vigil, incident_id: int, change: str) -> list[float]:
    return [m.payload["at"] for m in vigil.store.outbox_for_prefix(f"incident:{incident_id}")
            if m.kind == "reply" and m.payload["change"] == change]


def _clean_cycles(vigil: Vigil) -> list[tuple[str, int]]:
    with vigil.store.tx() as s:
        return [(r.version, r.clean_cycles) for r in s.query(KnownGoodRow).filter_by(model=MODEL)]


def _critical_repeat_due(vigil: Vigil) -> Any:
    assert [vigil.run_cycle(MODEL, T0 + 60 * k).step for k in range(2)] == ["open", "update"]
    for k in range(2, 6):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    (row,) = vigil.store.incidents()
    return row


def test_a_slack_silence_between_plan_and_apply_stops_the_reminder_planned_before_it(tmp_path, monkeypatch):
    vigil = _vigil(tmp_path)
    row = _critical_repeat_due(vigil)
    t1 = T0 + 360  # the critical's repeat is due: the plan reminds people of it
    _before_apply(monkeypatch, lambda: vigil.operator.slack_silence(vigil.store.incident(row.id), "U1", t1 - 1))

    report = vigil.run_cycle(MODEL, t1)

    with vigil.store.tx() as s:
        (silence,) = silences.live(s, t1)
    assert _replies(vigil, row.id, "repeated") == [], "the on-call was reminded of an incident they had just silenced"
    assert report.step == "unchanged"
    now = vigil.store.incident(row.id)
    assert now.last_notified_at == T0 + 60  # the repeat clock did not restart
    assert any(f"silence {silence.id}" in r for r in now.reasons), now.reasons  # shown muted by it


def test_an_incident_resolved_between_plan_and_apply_is_left_resolved_with_nothing_more_sent(tmp_path, monkeypatch,
                                                                                             caplog):
    vigil = _vigil(tmp_path)
    row = _critical_repeat_due(vigil)
    t1 = T0 + 360  # the plan reminds people of the critical
    told: list[int] = []
    clean_before = _clean_cycles(vigil)

    def removed() -> None:  # its reload resolves it, and tells people so
        resolve_removed(vigil, configured=set())
        told.append(len(vigil.store.outbox_for_prefix(f"incident:{row.id}")))

    _before_apply(monkeypatch, removed)
    caplog.set_level("INFO", logger="vigil.apply")

    report = vigil.run_cycle(MODEL, t1)  # failed on an assert before

    now = vigil.store.incident(row.id)
    assert now.status == "resolved" and now.last_notified_at == T0 + 60
    assert _replies(vigil, row.id, "resolved") != [] and _replies(vigil, row.id, "repeated") == []
    assert len(vigil.store.outbox_for_prefix(f"incident:{row.id}")) == told[0], "the cycle sent more"
    assert _clean_cycles(vigil) == clean_before  # a cycle that still saw the regression is not a clean one
    assert report.incident_id is None and report.severity is None
    assert report.step == "resolved_elsewhere"  # not "none": there was an incident, someone else resolved it
    now_row = read_model_now(vigil.store.tx, MODEL)
    assert now_row is not None and now_row.step == "resolved_elsewhere"  # what GET /v1/models shows
    assert vigil.store.incidents(model=MODEL, status="open") == []
    assert any("resolved" in r.getMessage() and "before" in r.getMessage() for r in caplog.records)
