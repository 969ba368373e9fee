"""An ack covers the severity acknowledged. The Slack message of an incident whose
escalation a silence holds shows the warning people were told; the API shows the incident
as it is, critical. Someone who acknowledges it there has taken the critical: when the
silence ends and the escalation is told, their ack must still hold (no reminders of it, no
"needs its own ack"), where an ack of the warning message lapses (tests/integration/
test_ack_escalation.py)."""
from __future__ import annotations

from monitor.silence_ops import SilenceAsk, create
from tests.helpers_vigil import MODEL, T0
from tests.unit.monitor.test_api import build


def test_an_api_ack_of_the_critical_a_silence_holds_still_covers_it_once_told(tmp_path, monkeypatch) -> None:
    api = build(tmp_path, monkeypatch,
                policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"})
    vigil = api.vigil
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-9", "olga", starts_at=T0 + 30,
                                   ends_at=T0 + 150), "olga", T0 - 10)
    assert vigil.run_cycle(MODEL, T0).step == "open"  # a warning, told
    assert vigil.run_cycle(MODEL, T0 + 60).step == "update"  # critical under the silence: not told
    (row,) = vigil.store.incidents()
    shown = api.client.get(f"/v1/incidents/{row.id}").json()
    assert shown["severity"] == "critical", shown
    r = api.post(f"/v1/incidents/{row.id}/ack")
    assert r.status_code == 200, r.text
    steps = [vigil.run_cycle(MODEL, T0 + 60 * k).step for k in range(2, 12)]  # the silence ends at T0 + 150
    assert "update" in steps, steps  # the escalation is told once the silence is over
    assert vigil.store.incident(row.id).acknowledged_by == "api:admin", "the ack of the critical lapsed"
    assert "repeat" not in steps, f"the acknowledged critical was repeated: {steps}"
