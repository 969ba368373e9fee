"""Choosing a rollback target and deciding a layer's move: pure, no store."""
from __future__ import annotations

from alerts.rollback import Move, TargetFacts, blamed_versions, choose_target, decide_move


def facts(**over: object) -> TargetFacts:
    base: dict[str, object] = {"serving": "3", "known_good": ["2", "1"], "blamed": {}, "deploy_previous": "2"}
    base.update(over)
    return TargetFacts(**base)  # type: ignore[arg-type]


def test_default_is_the_most_recent_known_good_version_not_serving():
    assert choose_target(facts()).version == "2"
    assert choose_target(facts(serving="2", blamed={"2": "incident 5 suspects its deploy"})).version == "1"


def test_a_second_default_rollback_stays_on_the_version_the_first_went_back_to():
    # v3 -> v2 done: v3 is blamed, v2 serves. A second press (or a second person) must not go on to v1,
    # whether v2 is known good or only the version before the last deploy.
    after = facts(serving="2", blamed={"3": "rollback 4 moved away from it"})
    assert choose_target(after).version == "2" and "already serving" in choose_target(after).reason
    young = facts(serving="2", known_good=["1"], blamed={"3": "rollback 4 moved away from it"}, deploy_previous="2")
    assert choose_target(young).version == "2"


def test_a_blamed_version_is_never_a_default_target():
    # The half-recorded rollback of issue 11: the alias is back on v1, its "previous" is v2, which the incident blames.
    f = facts(serving="1", known_good=[], blamed={"2": "incident 7 suspects its deploy"}, deploy_previous="2")
    choice = choose_target(f)
    assert choice.version is None and "v2 (incident 7 suspects its deploy)" in choice.reason
    f = facts(serving="3", known_good=["2", "1"], blamed={"2": "rollback 4 moved away from it"})
    assert choose_target(f).version == "1"


def test_without_known_good_versions_the_version_before_the_deploy_is_taken():
    choice = choose_target(facts(known_good=[], deploy_previous="2"))
    assert choice.version == "2" and "before the last deploy" in choice.reason


def test_a_serving_known_good_version_makes_the_default_a_noop_target():
    assert choose_target(facts(serving="1", known_good=["1"], deploy_previous="1")).version == "1"


def test_asking_for_a_blamed_version_needs_force_and_a_reason():
    f = facts(serving="4", blamed={"3": "incident 9 suspects its deploy"})
    refused = choose_target(f, asked="3")
    assert refused.version is None and "force" in refused.reason
    assert choose_target(f, asked="3", force=True, force_reason="  ").version is None
    forced = choose_target(f, asked="3", force=True, force_reason="v3 was fine; the incident was the GPU node")
    assert forced.version == "3" and forced.forced and "GPU node" in forced.reason
    assert choose_target(f, asked="1") .version == "1" and not choose_target(f, asked="1").forced


def test_asking_for_the_blamed_version_serving_stays_there_unforced():
    stay = choose_target(facts(blamed={"3": "incident 9 suspects its deploy"}), asked="3")
    assert stay.version == "3" and stay.stay and not stay.forced and "blamed (incident 9" in stay.reason


def test_blame_takes_each_incidents_best_ranked_deploy_and_each_rollback_source():
    causes = [{"kind": "gpu", "evidence": {}}, {"kind": "deploy", "evidence": {"version": "5"}},
              {"kind": "deploy", "evidence": {"version": "4"}}]
    blamed = blamed_versions([(11, causes)], [(3, "7")])
    assert blamed == {"5": "incident 11 suspects its deploy", "7": "rollback 3 moved away from it"}


def test_a_layer_moves_only_from_the_version_the_intent_moves_away_from():
    assert decide_move("2", "2", "1") == Move.ACT
    assert decide_move("1", "2", "1") == Move.ALREADY
    assert decide_move("3", "2", "1") == Move.SUPERSEDED  # somebody deployed v3 since: never reverse it
    assert decide_move(None, "2", "1") == Move.UNKNOWN
    assert decide_move(None, None, "1") == Move.ACT
