"""Provisioning over the Grafana HTTP API and annotations through the outbox, against a
local Grafana API server that follows contracts/README.md section 4."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from dashboards.annotations import GrafanaAnnotationNotifier
from dashboards.grafana_api import (
    GrafanaAuthError,
    GrafanaClient,
    GrafanaConflict,
    GrafanaRequestError,
    GrafanaUnavailable,
    parse_retry_after,
)
from dashboards.provisioning import build_all, provision_over_api
from dashboards.spec import DashboardSpec
from monitor.config import VigilConfig
from monitor.grafana.provision import provision_on_start, run_dashboards
from monitor.grafana.specs import dashboard_specs

try:
    from tests.fakes.grafana_server import FakeGrafana
    from tests.unit.dashboards.test_dashboards_build import sample_config, sample_spec
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.grafana_server import FakeGrafana
    from test_dashboards_build import sample_config, sample_spec

TOKEN = "test-token"


@pytest.fixture()
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana(tokens={TOKEN: "admin", "viewer-token": "viewer"}) as g:
        yield g


@pytest.fixture()
def config() -> VigilConfig:
    return sample_config()


@pytest.fixture()
def spec(config: VigilConfig) -> DashboardSpec:
    return dashboard_specs(config)


def client(g: FakeGrafana, token: str | None = TOKEN, retries: int = 0) -> GrafanaClient:
    return GrafanaClient(g.url, token, timeout_s=2.0, retries=retries)


# --------------------------------------------------------------------------- provisioning
def test_provision_creates_folder_and_every_dashboard(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        report = provision_over_api(spec, c)
    wanted = build_all(spec)
    assert report.folder_created and sorted(report.created) == sorted(d["uid"] for d in wanted)
    assert grafana.folders["vigil"]["title"] == "Vigil"
    for d in wanted:
        stored = grafana.dashboards[d["uid"]]
        assert stored.folder_uid == "vigil" and stored.version == 1
        assert {k: v for k, v in stored.model.items() if k not in ("id", "version")} == \
               {k: v for k, v in d.items() if k not in ("id", "version")}
    saves = grafana.calls("POST", "/api/dashboards/db")
    assert all(c.body["overwrite"] is True and c.body["folderUid"] == "vigil" for c in saves)


def test_provisioning_twice_changes_nothing(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        provision_over_api(spec, c)
        writes_after_first = len(grafana.writes())
        versions = {uid: d.version for uid, d in grafana.dashboards.items()}
        second = provision_over_api(spec, c)
    assert not second.changed and len(second.unchanged) == len(build_all(spec))
    assert {uid: d.version for uid, d in grafana.dashboards.items()} == versions
    assert len(grafana.writes()) == writes_after_first, "the second run must not save anything"
    folder_posts = grafana.calls("POST", "/api/folders")
    assert [c.status for c in folder_posts] == [200, 409]  # 409 = exists, fine


def test_a_hand_edited_dashboard_is_put_back(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        provision_over_api(spec, c)
        grafana.edit_dashboard("vigil-recommender", {"title": "edited by hand", "panels": []})
        report = provision_over_api(spec, c)
    assert report.updated == ["vigil-recommender"] and len(report.unchanged) == 2
    stored = grafana.dashboards["vigil-recommender"]
    assert stored.model["title"] == "Vigil · recommender" and stored.version == 3
    assert stored.model["panels"] == build_all(spec)[1]["panels"]


def test_version_mismatch_is_retried_once_with_the_current_version(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        provision_over_api(spec, c)
        grafana.edit_dashboard("vigil-recommender", {"title": "edited"})
        grafana.force(412, path="/api/dashboards/db",
                      body={"message": "The dashboard has been changed by someone else", "status": "version-mismatch"})
        report = provision_over_api(spec, c)
    assert "vigil-recommender" in report.updated
    assert grafana.dashboards["vigil-recommender"].model["title"] == "Vigil · recommender"


def test_persistent_conflicts_have_clear_messages(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    mismatch = {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
    with client(grafana) as c:
        grafana.force(412, count=2, path="/api/dashboards/db", body=mismatch)
        with pytest.raises(GrafanaConflict, match=r"someone is editing it\); run `vigil dashboards` again"):
            provision_over_api(spec, c)
        grafana.force(412, path="/api/dashboards/db",
                      body={"message": "A dashboard with the same name in the folder already exists",
                            "status": "name-exists"})
        with pytest.raises(GrafanaConflict, match="already has a dashboard titled .* with another uid"):
            provision_over_api(spec, c)


@pytest.mark.parametrize("token, status, hint", [
    (None, 401, "no token was given: set GRAFANA_TOKEN"),
    ("wrong", 401, "check that the token is valid"),
    ("viewer-token", 403, "Editor role"),
])
def test_auth_errors_say_what_to_do(grafana: FakeGrafana, spec: DashboardSpec, token: str | None, status: int,
                                    hint: str) -> None:
    with client(grafana, token) as c, pytest.raises(GrafanaAuthError) as e:
        provision_over_api(spec, c)
    assert e.value.status == status and hint in str(e.value) and grafana.dashboards == {}
    assert "test-token" not in str(e.value)


def test_outage_then_recovery(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    grafana.down()
    with client(grafana, retries=1) as c:
        with pytest.raises(GrafanaUnavailable, match="unreachable"):
            provision_over_api(spec, c)
        grafana.up()
        grafana.force(503, count=2, path="/api/dashboards/db")  # retried by the client (retries=1) then by re-running
        with pytest.raises(GrafanaUnavailable, match="503"):
            provision_over_api(spec, c)
        report = provision_over_api(spec, c)
    assert not report.folder_created  # created by the failed run, which is fine
    assert len(grafana.dashboards) == len(build_all(spec))


def test_transient_errors_are_retried_honouring_retry_after(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    grafana.force(429, count=1, path="/api/folders", retry_after="0")
    grafana.force(502, count=1, path="/api/dashboards/uid/")
    with client(grafana, retries=2) as c:
        report = provision_over_api(spec, c)
    assert report.folder_created and len(report.created) == 3
    assert parse_retry_after("7") == 7.0 and parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now


def test_daemon_start_up_never_crashes_on_grafana(config: VigilConfig) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: connection refused
        cfg = sample_config(grafana={"url": dead, "provision_on_start": True})
        assert provision_on_start(cfg, GrafanaClient(dead, TOKEN, timeout_s=1, retries=0)) is None
    assert provision_on_start(sample_config(grafana={"provision_on_start": False})) is None


def test_cli_files_and_api(grafana: FakeGrafana, config: VigilConfig, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert run_dashboards(config, str(tmp_path), None, None) == 0
    assert (tmp_path / "dashboards" / "vigil-overview.json").is_file()
    assert grafana.calls() == [], "--out alone writes files and does not call Grafana"
    assert run_dashboards(config, None, grafana.url, None) == 0
    out = capsys.readouterr().out
    assert "3 created" in out and f"{grafana.url}/d/vigil-recommender" in out
    assert run_dashboards(config, None, grafana.url, None) == 0
    assert "3 unchanged" in capsys.readouterr().out
    assert run_dashboards(config, None, grafana.url, "wrong") == 1
    assert "refused" in capsys.readouterr().err
    grafana.down()
    assert run_dashboards(config, None, grafana.url, None) == 2
    assert "Run it again when Grafana is up" in capsys.readouterr().err
    assert run_dashboards(sample_config(grafana={}), None, None, None) == 64


# --------------------------------------------------------------------------- annotations
def deploy_msg(i: int = 1, attempts: int = 0) -> OutboxMessage:
    return OutboxMessage(id=i, notifier="grafana", kind=MessageKind.DEPLOY, key=f"deploy:recommender:{i + 3}",
                         attempts=attempts,
                         payload={"model": "recommender", "alias": "champion", "version": str(i + 3),
                                  "previous_version": str(i + 2), "at": 1_790_000_000.25 + i})


def incident_msg(status: str, i: int = 10, ref: dict | None = None) -> OutboxMessage:
    return OutboxMessage(id=i, notifier="grafana", kind=MessageKind.INCIDENT, key="incident:42", ref=ref,
                         payload={"incident_id": 42, "model": "recommender", "severity": "critical", "status": status,
                                  "title": "CTR dropped 8% after deploy v4", "opened_at": 1_790_000_100.0,
                                  "resolved_at": 1_790_003_700.5 if status == "resolved" else None,
                                  "summary": "top cause: deploy v4 (confidence 0.82)"})


def rollback_msg() -> OutboxMessage:
    return OutboxMessage(id=20, notifier="grafana", kind=MessageKind.ROLLBACK, key="rollback:7",
                         payload={"model": "recommender", "from_version": "4", "to_version": "3",
                                  "at": 1_790_000_400.0, "status": "done", "reason": "critical incident 42",
                                  "dry_run": False, "actor": "vigil"})


def test_deploy_and_rollback_annotations(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    r1, r2 = n.deliver(deploy_msg()), n.deliver(rollback_msg())
    assert r1.status == r2.status == DeliveryStatus.DELIVERED
    dep, rb = grafana.annotations[r1.ref["annotation_id"]], grafana.annotations[r2.ref["annotation_id"]]
    assert dep["time"] == 1_790_000_001_250 and dep["tags"][:4] == ["vigil", "deploy", "recommender", "v4"]
    assert dep["text"] == "Deploy: recommender champion -> v4 (was v3)"
    assert rb["time"] == 1_790_000_400_000 and rb["tags"][:4] == ["vigil", "rollback", "recommender", "done"]
    assert "v4 -> v3" in rb["text"] and "critical incident 42" in rb["text"]
    # The tags the generated dashboards query for find exactly these annotations.
    model_dash = build_all(sample_spec())[1]
    for q in model_dash["annotations"]["list"]:
        hits = [a for a in grafana.annotations.values() if all(t in a["tags"] for t in q["target"]["tags"])]
        assert len(hits) == (0 if q["name"] == "Incidents" else 1), q["name"]


def test_incident_opens_a_region_and_resolve_patches_its_end(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    opened = n.deliver(incident_msg("open"))
    assert opened.status == DeliveryStatus.DELIVERED
    aid = opened.ref["annotation_id"]
    assert grafana.annotations[aid]["time"] == 1_790_000_100_000
    resolved = n.deliver(incident_msg("resolved", i=11, ref=opened.ref))
    assert resolved.status == DeliveryStatus.DELIVERED and resolved.ref == {"annotation_id": aid}
    assert len(grafana.annotations) == 1
    a = grafana.annotations[aid]
    assert (a["time"], a["timeEnd"]) == (1_790_000_100_000, 1_790_003_700_500) and "(resolved)" in a["text"]
    assert [c.method for c in grafana.calls(path="/api/annotations")] == ["POST", "PATCH"]


def test_resolve_of_a_deleted_annotation_recreates_the_region(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    r = n.deliver(incident_msg("resolved", ref={"annotation_id": 999}))
    assert r.status == DeliveryStatus.DELIVERED and r.ref["annotation_id"] != 999
    a = grafana.annotations[r.ref["annotation_id"]]
    assert a["timeEnd"] - a["time"] == 3_600_500


@pytest.mark.parametrize("status, retry_after, expected, after", [
    (503, None, DeliveryStatus.RETRY, None),
    (500, None, DeliveryStatus.RETRY, None),
    (429, "12", DeliveryStatus.RETRY, 12.0),
    (401, None, DeliveryStatus.FAILED, None),
    (403, None, DeliveryStatus.FAILED, None),
    (400, None, DeliveryStatus.FAILED, None),
])
def test_delivery_status_by_grafana_answer(grafana: FakeGrafana, status: int, retry_after: str | None,
                                           expected: DeliveryStatus, after: float | None) -> None:
    grafana.force(status, path="/api/annotations", retry_after=retry_after)
    r = GrafanaAnnotationNotifier(client(grafana)).deliver(deploy_msg())
    assert r.status == expected and r.retry_after == after and str(status) in r.error
    assert grafana.annotations == {}


def test_timeouts_are_retried(grafana: FakeGrafana) -> None:
    grafana.delay(1.5)
    n = GrafanaAnnotationNotifier(GrafanaClient(grafana.url, TOKEN, timeout_s=0.5, retries=0))
    assert n.deliver(deploy_msg()).status == DeliveryStatus.RETRY


def test_bad_payload_fails_naming_the_field(grafana: FakeGrafana) -> None:
    msg = deploy_msg()
    msg.payload["at"] = "yesterday"
    r = GrafanaAnnotationNotifier(client(grafana)).deliver(msg)
    assert r.status == DeliveryStatus.FAILED and "'at'" in r.error and "epoch seconds" in r.error
    assert grafana.calls() == []


def test_outage_delays_annotations_but_loses_none(grafana: FakeGrafana) -> None:
    """A minimal outbox loop: RETRY keeps the message (with its ref) for the next pass."""
    n = GrafanaAnnotationNotifier(client(grafana))
    pending = [deploy_msg(1), incident_msg("open"), rollback_msg(), deploy_msg(2)]
    refs: dict[str, dict] = {}
    grafana.down()
    passes = 0
    while pending and passes < 5:
        if passes == 2:
            grafana.up()
        still: list[OutboxMessage] = []
        for m in pending:
            m.ref = refs.get(m.key, m.ref)
            r = n.deliver(m)
            m.attempts += 1
            if r.status == DeliveryStatus.RETRY:
                still.append(m)
            else:
                assert r.status == DeliveryStatus.DELIVERED, r.error
                refs[m.key] = r.ref
        pending, passes = still, passes + 1
        if passes == 3:
            pending.append(incident_msg("resolved", i=11))  # resolved after the outage: patches the region
    assert not pending
    texts = sorted(a["text"].split("\n")[0] for a in grafana.annotations.values())
    assert len(texts) == 4, texts
    incident = next(a for a in grafana.annotations.values() if "incident" in a["tags"])
    assert incident["timeEnd"] == 1_790_003_700_500


def test_a_lost_response_does_not_duplicate_the_annotation(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    first = n.deliver(deploy_msg())
    assert first.status == DeliveryStatus.DELIVERED
    # The outbox never saw that result (crash before commit) and delivers again.
    again = n.deliver(deploy_msg(attempts=1))
    assert again.status == DeliveryStatus.DELIVERED and again.ref == first.ref
    assert len(grafana.annotations) == 1


def test_a_same_titled_folder_with_another_uid_is_explained(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    grafana.folders["team"] = {"id": 99, "uid": "team", "title": "Vigil"}
    with client(grafana) as c, pytest.raises(GrafanaRequestError, match="set grafana.folder_uid to that folder's uid"):
        provision_over_api(spec, c)
    assert grafana.dashboards == {}
