"""`vigil replay --config` over a past window reads production's registry, which holds
today's state. Each replayed time must see the registry as it was then: a version
registered later does not exist yet, an alias move Vigil recorded after it is undone, and
what cannot be known is said, never turned into a deploy at the first replayed cycle."""
from __future__ import annotations

from monitor.replay.loop import ReplayOptions, ReplaySpan, replay
from monitor.sources.registry import alias_tag, format_timestamp
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, model_config, serving_registry

V2_AT = T0 + 57 * 60  # v2 registered at 08:57; the alias serves it today


def replay_window(tmp_path, registry, start: float, end: float, **model):
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2},
                      models=[model_config(**model)])
    out = tmp_path / f"out-{int(start)}" / "incidents.jsonl"
    options = ReplayOptions(out_path=out, progress=False, registry=registry,
                            prometheus=incident_prometheus(bad_from=start + 600))
    return replay(cfg, ReplaySpan(start, end, 300.0), options)


def deploys(result) -> list[tuple[float, str]]:
    return [(at, line) for at, line in result.timeline if "now serves" in line or "rolled back to" in line]


def test_a_version_registered_after_the_replayed_window_is_never_its_deploy(tmp_path):
    registry = serving_registry(version="2", versions=("1",))
    registry.add_version(MODEL, "2", created_at=V2_AT)  # no record of the move: MLflow keeps none
    result = replay_window(tmp_path, registry, T0, T0 + 1800)  # 08:00-08:30, before v2 existed

    assert deploys(result) == []  # was: "'champion' now serves v2" at 08:00, blamed
    for inc in result.incidents:
        assert not [c for c in inc["causes"] if c["kind"] == "deploy"], inc["causes"]
    notes = [line for at, line in result.timeline if "registry as of now" in line]
    assert len(notes) == 1 and "is unknown" in notes[0] and "v2" in notes[0], result.timeline


def test_an_alias_move_vigil_recorded_is_undone_before_it_was_made(tmp_path):
    registry = serving_registry(version="2", versions=("1",))
    registry.add_version(MODEL, "2", created_at=V2_AT, tags={
        alias_tag("champion", "set_at"): format_timestamp(V2_AT + 60),
        alias_tag("champion", "previous"): "1", alias_tag("champion", "set_by"): "vigil-replay"})
    result = replay_window(tmp_path, registry, V2_AT - 1200, V2_AT + 1200)

    # v1 served until the recorded move, then v2: one deploy, after the move, from v1
    ((at, line),) = deploys(result)
    assert V2_AT + 60 <= at <= V2_AT + 360 and "now serves v2 (was v1)" in line, result.timeline
    assert not [line for _, line in result.timeline if "is unknown" in line]


def test_a_canary_whose_alias_is_unknown_then_is_judged_as_with_an_unreadable_registry(tmp_path):
    registry = serving_registry(version="1", versions=("1",))
    registry.add_version(MODEL, "2", created_at=V2_AT)
    registry.aliases[(MODEL, "challenger")] = "2"  # today's challenger, registered after the window
    result = replay_window(tmp_path, registry, T0, T0 + 1800, canary={"alias": "challenger", "window": "1h"})

    assert result.cycles == 7 and len(result.incidents) == 1  # the cycles ran; the incident opened
    assert [line for _, line in result.timeline if "'challenger' served up to" in line]


def test_an_alias_unknown_for_the_whole_replay_is_warned_about_once_not_each_cycle(tmp_path, caplog):
    registry = serving_registry(version="2", versions=("1",))
    registry.add_version(MODEL, "2", created_at=V2_AT)
    caplog.set_level("WARNING")
    result = replay_window(tmp_path, registry, T0, T0 + 1800)  # 7 cycles, the alias unknown in each

    polls = [r for r in caplog.records if r.getMessage() == "registry poll failed"]
    assert result.cycles == 7 and len(polls) == 1, [r.getMessage() for r in caplog.records]
    assert [line for _, line in result.timeline if "is unknown" in line]  # the timeline still says so
