"""registry.jsonl parsing and its step-by-step replay into a real (SQLite) MLflow registry."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from detectors.records import DeployEvent
from monitor.replay.registry_bundle import RegistryEvent, RegistryTimeline, read_registry_jsonl, replay_source
from monitor.sources.registry import RegistrySource, alias_record, detect_alias_move, parse_timestamp
from tests.fixtures_mlflow import write_lines

T0 = parse_timestamp("2026-11-20T08:00:00Z")


def _history(name: str) -> list[str]:
    return [
        json.dumps({"type": "model", "name": name, "at": "2026-11-20T07:00:00Z", "tags": {"team": "recsys"}}),
        json.dumps({"type": "version", "name": name, "version": "1", "at": "2026-11-20T08:00:00Z",
                    "tags": {"git_sha": "abc1234", "vigil.reference_path": "reference/train.parquet"}}),
        json.dumps({"type": "alias", "name": name, "alias": "champion", "version": "1", "at": T0 + 300}),
        "",
        json.dumps({"type": "version", "name": name, "version": 2, "at": "2026-11-21T08:00:00+00:00",
                    "description": "retrained on November data"}),
        json.dumps({"type": "alias", "name": name, "alias": "champion", "version": "2",
                    "at": "2026-11-21T10:00:00Z"}),
    ]


def test_read_parses_times_versions_and_tags(tmp_path: Path) -> None:
    events = read_registry_jsonl(write_lines(tmp_path / "registry.jsonl", _history("recommender")))
    assert [e.type for e in events] == ["model", "version", "alias", "version", "alias"]
    assert events[1].at == T0 and events[2].at == T0 + 300
    assert events[3].version == "2"  # an int in the file is normalised
    assert events[3].at == T0 + 86400 and events[3].description == "retrained on November data"
    assert events[1].tags == {"git_sha": "abc1234", "vigil.reference_path": "reference/train.parquet"}
    assert events[4].alias == "champion" and events[4].line == 6  # the blank line still counts


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"type":"version","name":"rec","version":"v2","at":1}',
         "line 3: field 'version' expected a string of digits"),
        ('{"type":"version","name":"rec","at":1}', "line 3: field 'version' expected a string of digits"),
        ('{"type":"deploy","name":"rec","at":1}', "line 3: field 'type' expected one of"),
        ('{"type":"alias","name":"rec","version":"1","at":1}', "line 3: field 'alias' expected a non-empty string"),
        ('{"type":"version","name":"rec","version":"2","at":"2026-11-20 08:00"}',
         "line 3: field 'at' expected a time zone"),
        ('{"type":"version","name":"rec","version":"2","at":"soon"}', "line 3: field 'at' expected an RFC 3339"),
        ('{"type":"version","name":"rec","version":"2"}', "line 3: field 'at' is required"),
        ('{"type":"version","name":"","version":"2","at":1}', "line 3: field 'name' expected a non-empty string"),
        ('{"type":"version","name":"rec","version":"2","at":1,"tags":{"n":1}}', "line 3: field 'tags' expected"),
        ('{"type":"version","name":"rec","verison":"2","at":1}', "line 3: unknown field 'verison'"),
        ('{"type":"version","name":"rec","version":"2",', "line 3: invalid JSON"),
        ('["version","rec"]', "line 3: expected a JSON object"),
    ],
)
def test_bad_line_names_the_line_and_the_field(tmp_path: Path, line: str, message: str) -> None:
    good = [json.dumps({"type": "model", "name": "rec", "at": 0}),
            json.dumps({"type": "version", "name": "rec", "version": "1", "at": 0})]
    path = write_lines(tmp_path / "registry.jsonl", [*good, line])
    with pytest.raises(ValueError) as err:
        read_registry_jsonl(path)
    assert f"registry.jsonl {message}" in str(err.value)


def test_versions_must_follow_mlflows_numbering(tmp_path: Path) -> None:
    lines = [json.dumps({"type": "version", "name": "rec", "version": "1", "at": 0}),
             json.dumps({"type": "version", "name": "rec", "version": "3", "at": 10})]
    with pytest.raises(ValueError, match="line 2: field 'version' expected 2 for model 'rec'"):
        read_registry_jsonl(write_lines(tmp_path / "registry.jsonl", lines))


def test_alias_cannot_point_at_a_version_not_created_yet(tmp_path: Path) -> None:
    lines = [json.dumps({"type": "alias", "name": "rec", "alias": "champion", "version": "1", "at": 0}),
             json.dumps({"type": "version", "name": "rec", "version": "1", "at": 10})]
    with pytest.raises(ValueError, match="line 1: field 'version' 1 of model 'rec' is not created"):
        read_registry_jsonl(write_lines(tmp_path / "registry.jsonl", lines))


def test_timeline_applies_step_by_step_and_the_poll_sees_each_deploy(
    sqlite_registry: RegistrySource, model_name: str, tmp_path: Path
) -> None:
    events = read_registry_jsonl(write_lines(tmp_path / "registry.jsonl", _history(model_name)))
    timeline = RegistryTimeline(events, sqlite_registry)
    last: str | None = None
    deploys: list[DeployEvent] = []

    def cycle(t: float) -> list[RegistryEvent]:
        # what the replay driver and the daemon do each cycle
        nonlocal last
        applied = timeline.apply_until(t)
        current = sqlite_registry.alias_version(model_name, "champion")
        event = detect_alias_move(model=model_name, alias="champion", last_known=last, current=current, at=t)
        if event:
            deploys.append(event)
        last = current if current is not None else last
        return applied

    assert cycle(T0 - 7200) == []
    assert sqlite_registry.alias_version(model_name, "champion") is None
    assert [e.type for e in cycle(T0)] == ["model", "version"]
    assert [v.version for v in sqlite_registry.list_versions(model_name)] == ["1"]
    assert sqlite_registry.alias_version(model_name, "champion") is None  # moved 5 min later
    assert [e.type for e in cycle(T0 + 600)] == ["alias"]
    assert cycle(T0 + 1200) == []
    v1 = sqlite_registry.get_version(model_name, "1")
    assert v1.created_at == T0  # the historical time, not the time of the replay
    assert v1.source == replay_source(model_name, "1")
    assert sqlite_registry.reference_path(model_name, "1") == "reference/train.parquet"

    assert [e.type for e in cycle(T0 + 2 * 86400)] == ["version", "alias"]
    assert [v.version for v in sqlite_registry.list_versions(model_name)] == ["1", "2"]
    assert deploys == [
        DeployEvent(model_name, "champion", "1", None, T0 + 600, "registry"),
        DeployEvent(model_name, "champion", "2", "1", T0 + 2 * 86400, "registry"),
    ]
    record = alias_record(sqlite_registry.get_version(model_name, "2"), "champion")
    assert record is not None
    assert record.set_at == parse_timestamp("2026-11-21T10:00:00Z") and record.previous_version == "1"
    assert record.set_by == "vigil-replay"
    assert timeline.pending == []


def test_restarted_replay_over_the_same_registry_changes_nothing(
    sqlite_registry: RegistrySource, model_name: str, tmp_path: Path
) -> None:
    events = read_registry_jsonl(write_lines(tmp_path / "registry.jsonl", _history(model_name)))
    RegistryTimeline(events, sqlite_registry).apply_until(T0 + 600)
    again = RegistryTimeline(events, sqlite_registry)
    assert len(again.apply_until(T0 + 600)) == 3
    assert [v.version for v in sqlite_registry.list_versions(model_name)] == ["1"]
    assert sqlite_registry.alias_version(model_name, "champion") == "1"


def test_version_number_mismatch_is_an_error(sqlite_registry: RegistrySource, model_name: str) -> None:
    sqlite_registry.create_model(model_name)
    sqlite_registry.create_version(model_name, replay_source(model_name, "x"))  # someone else's version 1
    events = [RegistryEvent("version", model_name, T0, version="3", line=4)]
    with pytest.raises(ValueError, match="line 4: MLflow numbered the new version .* 2, the history says 3"):
        RegistryTimeline(events, sqlite_registry).apply_until(T0)
    clash = [RegistryEvent("version", model_name, T0, version="1", line=2)]
    with pytest.raises(ValueError, match="line 2: version 1 .* already exists in the registry"):
        RegistryTimeline(clash, sqlite_registry).apply_until(T0)
