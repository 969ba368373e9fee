"""The chaos benchmark's plan and its four counts, without any server: what each count
takes as a lost alert, a duplicate post, a duplicate or a wrong rollback, and what it
does not."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks import chaos_plan as P
from benchmarks.chaos_proxy import AliasWrite
from benchmarks.chaos_report import final_line, takeover_figure
from benchmarks.chaos_scenario import ONCALL, ModelPlan
from benchmarks.chaos_takeover import CycleSeen, Kill, takeover
from benchmarks.chaos_verdict import StoreFacts, judge, read_posts

REG = ModelPlan("m-a", "regression", 1000.0, "1", "2")
HARMLESS = ModelPlan("m-b", "harmless", 2000.0)


@dataclass
class Msg:  # what FakeSlack keeps of a message
    channel: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)


def incident_msg(channel: str, incident_id: int) -> Msg:
    blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": f"*m-a* · incident #{incident_id}"}]}]
    return Msg(channel, ":red_circle: [CRITICAL] m-a: KPI ctr -12%", blocks, versions=[{"text": "x", "blocks": blocks}])


def facts(incidents: list[tuple[int, str, str]] | None = None, undelivered: list[tuple[str, str]] | None = None,
          done: list[tuple[str, str]] | None = None) -> StoreFacts:
    rows = [(i, m, sev, 1000.0, 3000.0) for i, m, sev in (incidents or [])]
    return StoreFacts(rows, undelivered or [], {}, done or [])


def posts(*msgs: Msg) -> list:
    return read_posts(list(msgs), {})


def write(model: str, version: str) -> AliasWrite:
    return AliasWrite(0.0, model, "champion", version, 200)


def test_a_clean_run_counts_nothing() -> None:
    v = judge([REG, HARMLESS], facts([(1, "m-a", "critical")], done=[("m-a", "1")]),
              posts(incident_msg(REG.owner_channel, 1), incident_msg(ONCALL, 1)), [write("m-a", "1")],
              {"m-a": "1", "m-b": "2"})
    assert (v.lost_alerts, v.duplicate_posts, v.duplicate_rollbacks, v.wrong_rollbacks) == (0, 0, 0, 0)
    assert v.clean


def test_lost_alerts_missing_channel_missing_incident_and_undelivered_rows() -> None:
    # the critical incident never reached on-call; a second model's regression opened nothing;
    # a rollback notice stayed pending
    reg2 = ModelPlan("m-c", "regression", 1500.0, "1", "2")
    v = judge([REG, reg2], facts([(1, "m-a", "critical")], undelivered=[("rollback:m-a:intent:1", "pending")]),
              posts(incident_msg(REG.owner_channel, 1)), [write("m-a", "1"), write("m-c", "1")],
              {"m-a": "1", "m-c": "1"})
    assert v.lost_alerts == 3


def test_an_undelivered_row_for_a_missing_channel_counts_once() -> None:
    v = judge([REG], facts([(1, "m-a", "warning")], undelivered=[(f"incident:1:{REG.owner_channel}", "failed")]),
              posts(), [write("m-a", "1")], {"m-a": "1"})
    assert v.lost_alerts == 1


def test_duplicate_posts_are_top_level_messages_beyond_the_first_per_incident_and_channel() -> None:
    ch = REG.owner_channel
    thread_reply = incident_msg(ch, 1)
    thread_reply.thread_ts = "1.0"
    v = judge([REG], facts([(1, "m-a", "warning")]),
              posts(incident_msg(ch, 1), incident_msg(ch, 1), incident_msg(ch, 1), thread_reply),
              [write("m-a", "1")], {"m-a": "1"})
    assert v.duplicate_posts == 2


def test_duplicate_rollbacks_take_the_larger_of_the_registry_and_the_store() -> None:
    v = judge([REG], facts([(1, "m-a", "critical")], done=[("m-a", "1")]),
              posts(incident_msg(REG.owner_channel, 1), incident_msg(ONCALL, 1)),
              [write("m-a", "1"), write("m-a", "1")], {"m-a": "1"})
    assert v.duplicate_rollbacks == 1
    v = judge([REG], facts([(1, "m-a", "critical")], done=[("m-a", "1"), ("m-a", "1"), ("m-a", "1")]),
              posts(incident_msg(REG.owner_channel, 1), incident_msg(ONCALL, 1)), [write("m-a", "1")], {"m-a": "1"})
    assert v.duplicate_rollbacks == 2


def test_wrong_rollbacks() -> None:
    # never rolled back: still serves the blamed version
    v = judge([REG], facts([(1, "m-a", "critical")]), posts(incident_msg(REG.owner_channel, 1),
                                                            incident_msg(ONCALL, 1)), [], {"m-a": "2"})
    assert v.wrong_rollbacks == 1 and "blames" in v.models[0].notes[0]
    # rolled "back" to the blamed version, then to v1: one wrong write, not two
    v = judge([REG], facts(), posts(), [write("m-a", "2"), write("m-a", "1")], {"m-a": "1"})
    assert v.wrong_rollbacks == 1
    # a model with no regression is never rolled back
    v = judge([HARMLESS], facts(), posts(), [write("m-b", "1")], {"m-b": "1"})
    assert v.wrong_rollbacks == 1


def test_takeover_is_the_longest_wait_for_another_process_to_cycle_the_owned_models() -> None:
    cycles = [CycleSeen(99.0, "m-a", 0, "A#1"), CycleSeen(99.5, "m-b", 0, "A#1"),
              CycleSeen(101.0, "m-a", 0, "A#1"),  # the killed process itself does not count
              CycleSeen(102.0, "m-a", 0, "B#1"), CycleSeen(104.5, "m-b", 0, "A#2")]
    t = takeover(Kill("A#1", 1, 100.0, None), cycles, 2.0, ["m-a", "m-b"], 200.0)
    assert t.seconds == 4.5 and t.by == "A#2,B#1"
    leased = takeover(Kill("A#1", 1, 100.0, ["m-a"]), cycles, 2.0, ["m-a", "m-b"], 200.0)
    assert leased.seconds == 2.0
    never = takeover(Kill("A#1", 1, 100.0, ["m-c"]), cycles, 2.0, ["m-a", "m-b", "m-c"], 200.0)
    assert never.seconds is None
    assert takeover_figure([t, never], 200.0)[0] == 100.0  # the wait until the end: a lower bound


def test_final_line_format() -> None:
    v = judge([REG], facts([(1, "m-a", "critical")], done=[("m-a", "1")]),
              posts(incident_msg(REG.owner_channel, 1), incident_msg(ONCALL, 1)), [write("m-a", "1")], {"m-a": "1"})
    assert final_line(v, 3.25) == ("lost_alerts=0 duplicate_posts=0 duplicate_rollbacks=0 wrong_rollbacks=0 "
                                   "takeover_s=3.2")


def test_the_plan_is_seeded_bounded_and_aims_at_rollbacks() -> None:
    plan = P.plan_faults(30, 6, seed=3)
    assert plan == P.plan_faults(30, 6, seed=3)
    assert len(plan.faults) == 30 and len(plan.deploy_steps) == 6
    anchored = [f for f in plan.faults if f.model_index is not None]
    assert {f.kind for f in anchored[:2]} == {P.FP_ALIAS, P.OUTAGE}
    assert all(f.kind in P.ANCHORED for f in anchored) and len(anchored) == 6
    assert set(P.FLOATING) <= {f.kind for f in plan.faults}
    steps = [f.step for f in plan.faults]
    assert steps == sorted(steps) and max(steps) < plan.steps
    assert min(b - a for a, b in zip(plan.deploy_steps, plan.deploy_steps[1:], strict=False)) >= P.MIN_ROUND
    quick = P.plan_faults(6, 2, seed=1)
    assert {P.KILL9, P.FP_ALIAS, P.OUTAGE} <= {f.kind for f in quick.faults}


def test_a_second_incident_for_one_regression_is_a_duplicate_page() -> None:
    msgs = [incident_msg(c, i) for i in (1, 2) for c in (REG.owner_channel, ONCALL)]
    v = judge([REG], facts([(1, "m-a", "critical"), (2, "m-a", "critical")], done=[("m-a", "1")]),
              posts(*msgs), [write("m-a", "1")], {"m-a": "1"})
    assert v.extra_incidents == 1 and v.duplicate_posts == 1 and not v.clean


def test_an_incident_before_the_deploy_is_another_episode_not_a_duplicate() -> None:
    rows = [(1, "m-a", "warning", 500.0, 700.0), (2, "m-a", "critical", 1000.0, 3000.0)]
    msgs = [incident_msg(REG.owner_channel, 1), incident_msg(REG.owner_channel, 2), incident_msg(ONCALL, 2)]
    v = judge([REG], StoreFacts(rows, [], {}, [("m-a", "1")]), posts(*msgs), [write("m-a", "1")], {"m-a": "1"})
    assert v.extra_incidents == 1 and v.duplicate_posts == 0
