"""grouping.repeat_interval reminds people of a shared cause nobody took. The group's
message is edited in place when a member joins or leaves, and an edit notifies no one:
the reminder counts from the last message that told someone, not from the last edit."""
from __future__ import annotations

from typing import Any

from alerts.lifecycle import IncidentStatus, LifecycleDecision, Step
from alerts.pipeline import AlertPlan
from alerts.policy import Severity, TierDecision
from monitor.store.repository import IncidentRow
from monitor.vigil import Vigil
from tests.helpers_vigil import T0, make_vigil, model_config
from tests.integration.test_shared_cause import RANKING, _Sink, config, registry

GPU = {"selector": 'Hostname="gpu-node-1"'}
LABELS: dict[str, Any] = {"cause_kind": "gpu_saturation", "cause": "gpu-node-1"}
PLAN = AlertPlan(tier=TierDecision(Severity.WARNING, ["gpu"], False), digest="d", labels=LABELS,
                 lifecycle=LifecycleDecision(Step.UPDATE, Severity.WARNING, True, 0))


def _vigil(tmp_path: Any) -> Vigil:
    models = [model_config(gpu=GPU), model_config("ranker", gpu=GPU, owner_channel=RANKING),
              model_config("scorer", gpu=GPU, owner_channel=RANKING)]
    cfg = config(tmp_path, models=models, grouping={"group_interval": "5m", "repeat_interval": "1h"})
    return make_vigil(cfg, registry=registry(), notifiers={"sink": _Sink()})


def _open(vigil: Vigil, model: str) -> int:
    with vigil.store.tx() as s:
        row = IncidentRow(model=model, status=IncidentStatus.OPEN, severity="warning", title=f"{model}: slow",
                          onset=T0, opened_at=T0, updated_at=T0, fingerprint=model)
        s.add(row)
        s.flush()
        return row.id


def _cycle(vigil: Vigil, incident_id: int, t: float, *, is_open: bool = True) -> None:
    """The member's cycle as apply_plan runs it: open, it joins its cause's group; resolved, it leaves."""
    vigil.grouper.prepare(PLAN, t)
    with vigil.store.tx() as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        row.status = IncidentStatus.OPEN if is_open else IncidentStatus.RESOLVED
        vigil.grouper.member_cycle(s, row, PLAN, t)


def _repeats(vigil: Vigil) -> list[float]:
    return sorted({m.payload["at"] for m in vigil.store.outbox_for_prefix("group:1")
                   if m.kind == "reply" and m.payload["change"] == "repeated"})


def test_a_churning_shared_cause_is_still_reminded_every_repeat_interval(tmp_path):
    """Two models stay saturated and unacknowledged for 2 h while a third joins and leaves
    every 10 min: each join or leave only edits the group's message. Every edit restarted
    the repeat clock, so the on-call was never reminded; now a reminder comes each hour."""
    vigil = _vigil(tmp_path)
    a, b, c = _open(vigil, "recommender"), _open(vigil, "ranker"), _open(vigil, "scorer")
    for t in (T0, T0 + 60):
        _cycle(vigil, a, t)
        _cycle(vigil, b, t)
    first = [m for m in vigil.store.outbox_for_prefix("group:1") if m.kind == "group"]
    assert first and {m.payload["change"] for m in first} == {"first"}
    for k in range(1, 13):  # 10 min apart, 2 h in all
        t = T0 + 60 + 600 * k
        _cycle(vigil, a, t)
        _cycle(vigil, b, t)
        _cycle(vigil, c, t, is_open=k % 2 == 1)
    edits = [m for m in vigil.store.outbox_for_prefix("group:1") if m.payload.get("change") == "changed"]
    assert edits, "the third model's comings and goings edit the group's message"
    assert len(_repeats(vigil)) >= 1, "a shared cause whose message keeps being edited was never reminded"


def test_an_edit_does_not_bring_the_reminder_forward_either(tmp_path):
    """Still one reminder per repeat_interval: a quiet group is reminded an hour after its
    page, not every cycle, and the first edit does not restart the hour."""
    vigil = _vigil(tmp_path)
    a, b, c = _open(vigil, "recommender"), _open(vigil, "ranker"), _open(vigil, "scorer")
    for t in (T0, T0 + 60):
        _cycle(vigil, a, t)
        _cycle(vigil, b, t)
    for k in range(1, 16):  # every 10 min for 2.5 h; the third model joins once, at 20 min
        t = T0 + 60 + 600 * k
        for m in (a, b) + ((c,) if k >= 2 else ()):
            _cycle(vigil, m, t)
    assert _repeats(vigil) == [T0 + 60 + 3600, T0 + 60 + 7200], _repeats(vigil)


def test_a_member_that_resolved_is_not_paged_or_mentioned_by_its_groups_escalation_and_repeats(tmp_path):
    """The scorer shared the GPU, was paged with the group as a warning, then recovered
    (it left the group, resolved). When another member turns critical, the escalation and
    the hourly "still critical" reminders went on @-mentioning the scorer's team in its
    channel, and a new critical page opened in the scorer's on-call channel, for a model that
    was fine. They now go only to the members still open; the scorer's channel, which has the
    group's message, still sees it edited (no mentions) so it does not stay stale."""
    scorer = model_config("scorer", gpu=GPU, owner_channel="#scoring-alerts", oncall_channel="#scoring-oncall",
                          mentions={"critical": ["<!subteam^S0SCORER>"], "warning": ["<@U0SCORER>"]})
    models = [model_config(gpu=GPU), model_config("ranker", gpu=GPU, owner_channel=RANKING), scorer]
    cfg = config(tmp_path, models=models, grouping={"group_interval": "5m", "repeat_interval": "1h"})
    vigil = make_vigil(cfg, registry=registry(), notifiers={"sink": _Sink()})
    a, b, c = _open(vigil, "recommender"), _open(vigil, "ranker"), _open(vigil, "scorer")
    for t in (T0, T0 + 60):
        for m in (a, b, c):
            _cycle(vigil, m, t)
    assert [m for m in vigil.store.outbox_for_prefix("group:1:#scoring-alerts") if m.kind == "group"]
    _cycle(vigil, c, T0 + 120, is_open=False)  # the scorer recovered
    with vigil.store.tx() as s:
        row = s.get(IncidentRow, a)
        assert row is not None
        row.severity = "critical"
    for k in range(1, 14):  # the recommender is critical from 10 min on, for 2 h
        _cycle(vigil, a, T0 + 60 + 600 * k)
        _cycle(vigil, b, T0 + 60 + 600 * k)
    rows = vigil.store.outbox_for_prefix("group:1")
    replies = [m.payload for m in rows if m.kind == "reply"]
    assert {p["change"] for p in replies} >= {"escalated", "repeated"}
    scorers = {"<!subteam^S0SCORER>", "<@U0SCORER>"}
    told_scorer = [(p["change"], p["channel"], p["mentions"]) for p in replies
                   if p["channel"].startswith("#scoring") or scorers & set(p["mentions"])]
    assert told_scorer == [], told_scorer
    assert not [m for m in rows if m.payload.get("channel") == "#scoring-oncall"], \
        "the recovered scorer's on-call channel was paged for the group's escalation"
    last = [m.payload for m in rows if m.kind == "group" and m.payload["channel"] == "#scoring-alerts"][-1]
    assert last["severity"] == "critical" and last["mentions"] == []
    assert [x["open"] for x in last["models"] if x["model"] == "scorer"] == [False]
