"""RegistrySource against a real MLflow registry: SQLite directly, and an `mlflow server` over HTTP."""
from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from detectors.records import DeployEvent
from monitor.config import MlflowConfig
from monitor.replay.local_mlflow import LocalMlflowServer
from monitor.replay.registry_bundle import RegistryEvent, RegistryTimeline, replay_source
from monitor.sources.errors import QueryError, SourceStatus, SourceUnavailable
from monitor.sources.registry import (
    ModelNotFound,
    RegistrySource,
    alias_record,
    detect_alias_move,
    format_timestamp,
    parse_timestamp,
)
from tests.fakes.local_http import LocalHTTPServer
from tests.fixtures_mlflow import closed_port_url

HTTP = pytest.param("http", marks=[pytest.mark.integration, pytest.mark.slow])


@pytest.fixture(scope="module", params=["sqlite", HTTP])
def registry(request: pytest.FixtureRequest) -> Iterator[RegistrySource]:
    """The same tests over both transports: the answers must not depend on which one."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_registry")
        return
    server: LocalMlflowServer = request.getfixturevalue("mlflow_server")
    with RegistrySource(MlflowConfig(tracking_uri=server.url, timeout_s=10)) as source:
        yield source


def _register(registry: RegistrySource, name: str, n: int, tags: dict[str, str] | None = None) -> None:
    registry.create_model(name)
    for i in range(1, n + 1):
        info = registry.create_version(name, replay_source(name, str(i)), tags=tags)
        assert info.version == str(i)


# --------------------------------------------------------------------------- real registry
def test_list_versions_sorted_numerically_with_string_versions(registry: RegistrySource, model_name: str) -> None:
    _register(registry, model_name, 11, tags={"git_sha": "abc1234"})
    versions = registry.list_versions(model_name)
    # "10" < "9" as text: the order must be numeric, the type str on both transports
    assert [v.version for v in versions] == [str(i) for i in range(1, 12)]
    assert all(isinstance(v.version, str) for v in versions)
    first = versions[0]
    assert first.name == model_name and first.status == "READY" and first.run_id is None
    assert first.tags == {"git_sha": "abc1234"}
    assert first.source == replay_source(model_name, "1")
    assert abs(first.created_at - time.time()) < 120  # MLflow's own registration time, in seconds


def test_alias_version_none_until_set_then_string(registry: RegistrySource, model_name: str) -> None:
    assert registry.alias_version(model_name, "champion") is None  # no such model
    _register(registry, model_name, 2)
    assert registry.alias_version(model_name, "champion") is None  # no such alias
    registry.set_alias(model_name, "champion", "2")
    assert registry.alias_version(model_name, "champion") == "2"
    assert registry.aliases(model_name) == {"champion": "2"}


def test_set_alias_is_idempotent(registry: RegistrySource, model_name: str) -> None:
    _register(registry, model_name, 2)
    registry.set_alias(model_name, "champion", "1")
    registry.set_alias(model_name, "champion", "1")
    assert registry.alias_version(model_name, "champion") == "1"
    registry.set_alias(model_name, "champion", 2)  # type: ignore[arg-type]  # ints are normalised
    assert registry.alias_version(model_name, "champion") == "2"


def test_a_canary_pull_removes_the_challenger_alias_once(registry: RegistrySource, model_name: str) -> None:
    from monitor.executors.base import RollbackStep
    from monitor.executors.mlflow_alias import ChallengerAliasExecutor

    _register(registry, model_name, 2)
    registry.set_alias(model_name, "champion", "1")
    registry.set_alias(model_name, "challenger", "2")
    pull = ChallengerAliasExecutor(registry, "challenger", "champion")
    step = RollbackStep(model_name, model_name, "2", "1", "vigil-rollback-1")
    assert pull.current(step) == "2"
    pull.apply(step)
    assert registry.aliases(model_name) == {"champion": "1"}
    assert pull.current(step) == "1" and pull.verify(step).ok  # the challenger's share serves the champion
    pull.apply(step)  # a retry after a crash removes nothing more
    assert registry.aliases(model_name) == {"champion": "1"}


def test_move_alias_records_the_move_and_is_idempotent(registry: RegistrySource, model_name: str) -> None:
    _register(registry, model_name, 3)
    registry.set_alias(model_name, "champion", "3")
    at = parse_timestamp("2026-11-20T09:30:00.250Z")
    event = registry.move_alias(model_name, "champion", "2", at=at, set_by="vigil-rollback")
    assert event == DeployEvent(model=model_name, alias="champion", version="2", previous_version="3", at=at,
                                source="rollback")
    assert registry.alias_version(model_name, "champion") == "2"
    record = alias_record(registry.get_version(model_name, "2"), "champion")
    assert record is not None
    assert (record.version, record.previous_version, record.set_by) == ("2", "3", "vigil-rollback")
    assert record.set_at == pytest.approx(at, abs=1e-3)
    # a retried rollback changes nothing and says so
    assert registry.move_alias(model_name, "champion", "2", at=at + 60) is None
    assert alias_record(registry.get_version(model_name, "2"), "champion") == record
    assert alias_record(registry.get_version(model_name, "1"), "champion") is None


def test_poll_and_diff_gives_the_previous_good_version(registry: RegistrySource, model_name: str) -> None:
    _register(registry, model_name, 2)
    registry.set_alias(model_name, "champion", "1")
    last = registry.alias_version(model_name, "champion")
    assert detect_alias_move(model=model_name, alias="champion", last_known=last,
                             current=registry.alias_version(model_name, "champion"), at=100.0) is None
    registry.set_alias(model_name, "champion", "2")  # a deploy by someone else
    event = detect_alias_move(model=model_name, alias="champion", last_known=last,
                              current=registry.alias_version(model_name, "champion"), at=200.0)
    assert event == DeployEvent(model_name, "champion", "2", "1", 200.0, "registry")


def test_reference_path_from_a_version_tag(registry: RegistrySource, model_name: str) -> None:
    _register(registry, model_name, 2)
    registry.set_version_tag(model_name, "2", "vigil.reference_path", "reference/train-v2.parquet")
    assert registry.reference_path(model_name, "2") == "reference/train-v2.parquet"
    assert registry.reference_path(model_name, "1") is None
    registry.set_version_tag(model_name, "1", "training_data", "s3://bucket/train.parquet")
    assert registry.reference_path(model_name, "1", tag="training_data") == "s3://bucket/train.parquet"


def test_a_reference_tag_added_after_vigil_read_the_version_is_seen(registry: RegistrySource, model_name: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Vigil's cycle said "no training reference: ... tag version 1 with vigil.reference_path";
    the team tagged it (MLflow's UI, another client), and Vigil kept the version as first read,
    untagged, and said the same every cycle until restarted. (An untagged version is read again
    at most once a minute: test_reference_tag_added_later.py; here the minute has passed.)"""
    import monitor.sources.registry.source as registry_source

    clock = [1000.0]
    monkeypatch.setattr(registry_source.time, "monotonic", lambda: clock[0])
    _register(registry, model_name, 1)
    assert registry.reference_path(model_name, "1") is None  # read (and kept) untagged
    with RegistrySource(registry.cfg) as teammate:  # another client of the same registry
        teammate.set_version_tag(model_name, "1", "vigil.reference_path", "reference/train-v1.parquet")
    clock[0] += 61
    assert registry.reference_path(model_name, "1") == "reference/train-v1.parquet"


def test_recorded_creation_time_wins_over_mlflows(registry: RegistrySource, model_name: str) -> None:
    registry.create_model(model_name)
    info = registry.create_version(model_name, replay_source(model_name, "1"),
                                   tags={"vigil.created_at": "2026-11-20T08:00:00Z"})
    assert info.created_at == parse_timestamp("2026-11-20T08:00:00Z")
    assert registry.get_version(model_name, "1").created_at == info.created_at


def test_unknown_model_and_version_are_not_found_not_unavailable(registry: RegistrySource, model_name: str) -> None:
    with pytest.raises(ModelNotFound, match=model_name) as err:
        registry.get_version(model_name, "1")
    assert err.value.name == model_name
    with pytest.raises(ModelNotFound, match=model_name):
        registry.list_versions(model_name)
    _register(registry, model_name, 1)
    with pytest.raises(ModelNotFound, match="version 7"):
        registry.get_version(model_name, "7")
    with pytest.raises(ModelNotFound):
        registry.set_alias(model_name, "champion", "7")
    assert registry.alias_version(model_name, "champion") is None
    with pytest.raises(ModelNotFound):
        registry.move_alias(model_name, "champion", "7", at=0.0)
    assert isinstance(err.value, KeyError)  # callers may treat it as a lookup miss


def test_create_model_twice_reports_it_existed(registry: RegistrySource, model_name: str) -> None:
    assert registry.create_model(model_name, tags={"team": "recsys"}) is True
    assert registry.create_model(model_name) is False


def test_ready_is_up_against_a_live_registry(registry: RegistrySource) -> None:
    state = registry.ready()
    assert state.status == SourceStatus.UP and state.name == "mlflow" and state.checked_at is not None


def test_timeline_replays_over_the_transport(registry: RegistrySource, model_name: str) -> None:
    t0 = parse_timestamp("2026-11-20T08:00:00Z")
    events = [
        RegistryEvent("version", model_name, t0, version="1", tags={"vigil.reference_path": "ref/v1.parquet"}),
        RegistryEvent("alias", model_name, t0 + 60, version="1", alias="champion"),
        RegistryEvent("version", model_name, t0 + 3600, version="2"),
        RegistryEvent("alias", model_name, t0 + 3660, version="2", alias="champion"),
    ]
    timeline = RegistryTimeline(events, registry)
    assert timeline.apply_until(t0 + 120) == events[:2]
    assert registry.alias_version(model_name, "champion") == "1"
    assert registry.reference_path(model_name, "1") == "ref/v1.parquet"
    assert timeline.apply_until(t0 + 4000) == events[2:]
    assert registry.alias_version(model_name, "champion") == "2"
    record = alias_record(registry.get_version(model_name, "2"), "champion")
    assert record is not None and record.set_at == t0 + 3660 and record.previous_version == "1"


# --------------------------------------------------------------------------- dead registries
def test_refused_connection_is_unavailable_fast() -> None:
    url = closed_port_url()
    source = RegistrySource(MlflowConfig(tracking_uri=url, timeout_s=2))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as err:
        source.alias_version("recommender", "champion")
    elapsed = time.monotonic() - started
    assert err.value.url == url and "mlflow" in str(err.value)
    assert elapsed < 3 * 2
    state = source.ready()
    assert state.status == SourceStatus.DOWN and state.detail


def test_silent_server_fails_within_the_timeout(silent_server) -> None:
    timeout = 1.0
    source = RegistrySource(MlflowConfig(tracking_uri=silent_server.url, timeout_s=timeout))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="no answer within 1s"):
        source.list_versions("recommender")
    elapsed = time.monotonic() - started
    # bounded by the deadline, not by retries x timeout (MLflow's own client: minutes)
    assert 0.8 * timeout < elapsed < 3 * timeout


class _Flaky(BaseHTTPRequestHandler):
    answers: list[tuple[int, bytes]] = []
    calls = 0

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def _answer(self) -> None:
        type(self).calls += 1
        status, body = self.answers[min(type(self).calls, len(self.answers)) - 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"answers": [], "calls": 0})
    with LocalHTTPServer(handler) as http:
        yield http.url, handler


def test_server_errors_are_retried_then_unavailable(flaky_server) -> None:
    url, handler = flaky_server
    handler.answers = [(503, b'{"error_code":"TEMPORARILY_UNAVAILABLE","message":"db busy"}')]
    source = RegistrySource(MlflowConfig(tracking_uri=url, timeout_s=2))
    with pytest.raises(SourceUnavailable, match="503.*db busy"):
        source.alias_version("recommender", "champion")
    assert handler.calls == 3

    handler.calls = 0
    ok = b'{"registered_model":{"name":"recommender","aliases":[{"alias":"champion","version":"4"}]}}'
    handler.answers = [(503, b"{}"), (200, ok)]
    assert source.alias_version("recommender", "champion") == "4"  # one hiccup is absorbed
    assert handler.calls == 2


def test_rejected_request_is_a_query_error_not_an_outage(flaky_server) -> None:
    url, handler = flaky_server
    handler.answers = [(400, b'{"error_code":"INVALID_PARAMETER_VALUE","message":"bad filter"}')]
    source = RegistrySource(MlflowConfig(tracking_uri=url, timeout_s=2))
    with pytest.raises(QueryError, match="bad filter"):
        source.list_versions("recommender")
    assert handler.calls == 1  # retrying a rejected request cannot help


def test_creating_a_version_is_not_retried_after_the_server_saw_it(flaky_server) -> None:
    url, handler = flaky_server
    handler.answers = [(503, b'{"error_code":"TEMPORARILY_UNAVAILABLE","message":"busy"}')]
    source = RegistrySource(MlflowConfig(tracking_uri=url, timeout_s=2))
    with pytest.raises(SourceUnavailable, match="503"):
        source.create_version("recommender", replay_source("recommender", "1"))
    assert handler.calls == 1  # a retry could register the same model twice


def test_a_server_that_is_not_mlflow_is_unavailable_not_an_empty_registry(flaky_server) -> None:
    url, handler = flaky_server
    handler.answers = [(404, b"<html>Not Found</html>")]
    source = RegistrySource(MlflowConfig(tracking_uri=url, timeout_s=2))
    with pytest.raises(SourceUnavailable, match="is this an MLflow server"):
        source.alias_version("recommender", "champion")
    assert source.ready().status == SourceStatus.DOWN


def test_sqlite_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "mlflow.db"
    bad.write_text("not a database, just text " * 100)
    source = RegistrySource(MlflowConfig(tracking_uri=f"sqlite:///{bad}", timeout_s=1))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="not a database"):
        source.alias_version("recommender", "champion")
    assert time.monotonic() - started < 3  # MLflow alone retries for ~100 s here
    assert source.ready().status == SourceStatus.DOWN


def test_unsupported_tracking_uri_names_the_field() -> None:
    with pytest.raises(ValueError, match="sqlite:///path/to/mlflow.db"):  # refused by the config ...
        MlflowConfig(tracking_uri="databricks://profile")
    with pytest.raises(ValueError, match="sources.mlflow.tracking_uri"):  # ... and by the source itself
        RegistrySource(MlflowConfig.model_construct(tracking_uri="databricks://profile", timeout_s=1.0))


# --------------------------------------------------------------------------- pure
@pytest.mark.parametrize(
    ("last", "current", "expected"),
    [
        ("1", "1", None),  # unchanged
        ("1", None, None),  # alias deleted: the caller warns, it is not a deploy
        (None, None, None),
        ("1", "2", DeployEvent("rec", "champion", "2", "1", 50.0, "registry")),
        ("3", "2", DeployEvent("rec", "champion", "2", "3", 50.0, "registry")),  # moved back is a deploy too
        (None, "1", DeployEvent("rec", "champion", "1", None, 50.0, "registry")),  # first sighting
    ],
)
def test_detect_alias_move(last: str | None, current: str | None, expected: DeployEvent | None) -> None:
    assert detect_alias_move(model="rec", alias="champion", last_known=last, current=current, at=50.0) == expected


def test_timestamps_round_trip_and_reject_naive_times() -> None:
    for text in ("2026-11-20T08:00:00Z", "2026-11-20T08:00:00.250Z", "2026-11-20T08:00:00.123456Z"):
        assert format_timestamp(parse_timestamp(text)) == text
    assert parse_timestamp("2026-11-20T09:00:00+01:00") == parse_timestamp("2026-11-20T08:00:00Z")
    assert parse_timestamp(1795161600) == parse_timestamp("1795161600") == 1795161600.0
    with pytest.raises(ValueError, match="time zone"):
        parse_timestamp("2026-11-20T08:00:00")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp("yesterday")


def test_all_aliases_reads_every_model_in_one_pass(registry: RegistrySource, model_name: str) -> None:
    """A sweep's registry read: the aliases of many models at once, {} for an unknown one,
    and the same answer alias_version gives model by model."""
    names = [f"{model_name}-{i}" for i in range(3)]
    for i, name in enumerate(names):
        _register(registry, name, 2)
        registry.set_alias(name, "champion", str(1 + i % 2))
    registry.set_alias(names[0], "challenger", "2")
    got = registry.all_aliases([*names, f"{model_name}-missing"])
    assert got[names[0]] == {"champion": "1", "challenger": "2"}
    assert got[names[1]] == {"champion": "2"} and got[f"{model_name}-missing"] == {}
    assert all(got[n]["champion"] == registry.alias_version(n, "champion") for n in names)


def test_a_version_is_read_once_for_its_reference_and_again_after_we_tag_it(registry: RegistrySource,
                                                                          model_name: str) -> None:
    _register(registry, model_name, 1, tags={"vigil.reference_path": "a.parquet"})
    assert registry.reference_path(model_name, "1") == "a.parquet"
    registry.set_version_tag(model_name, "1", "vigil.reference_path", "b.parquet")
    assert registry.reference_path(model_name, "1") == "b.parquet"


def test_a_first_sight_is_dated_by_the_registrys_record_of_the_move(
        registry: RegistrySource, model_name: str, tmp_path: Path) -> None:
    """A daemon started after an alias move (by another Vigil, a replay, before a new store)
    dates the deploy by the `set_at` tag the real registry returns, not by the version's
    registration time (which made a deploy just before the start no suspect)."""
    from tests.helpers_vigil import make_config, make_vigil, model_config

    _register(registry, model_name, 2)
    registry.set_alias(model_name, "champion", "1")
    moved = time.time() + 60  # after MLflow registered the versions (its own clock)
    registry.move_alias(model_name, "champion", "2", at=moved, set_by="vigil-replay")
    t = moved + 600
    v = make_vigil(make_config(tmp_path, models=[model_config(registry_name=model_name)]), registry=registry, start=t)
    [event] = v.deploys.record(v.config.models[0], "2", t)
    assert (event.version, event.source) == ("2", "observed")
    assert event.at == pytest.approx(moved, abs=1e-3)
