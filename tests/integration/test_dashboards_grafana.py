"""Provisioning over the Grafana HTTP API, against a local Grafana API server that follows
contracts/README.md section 4 (annotations: test_dashboards_annotations.py)."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    from tests.unit.dashboards.test_dashboards_build import sample_config
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.grafana_server import FakeGrafana
    from test_dashboards_build import sample_config

TOKEN = "test-token"


@pytest.fixture()
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana(tokens={TOKEN: "admin", "viewer-token": "viewer"}) as g:
        for uid in ("prom", "loki", "tempo"):  # the data sources the sample config's dashboards name
            g.add_datasource(uid, "prometheus" if uid == "prom" else uid)
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
    # overwrite=true would replace a dashboard of the same title in the folder (Grafana matches by title too)
    assert all(c.body["overwrite"] is False and c.body["folderUid"] == "vigil" for c in saves)


def test_a_users_dashboard_with_the_same_title_is_not_overwritten(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        c.create_folder("vigil", "Vigil")
        c.save_dashboard({"id": None, "uid": "users-own", "title": "Vigil · recommender", "panels": [{"id": 7}]},
                         "vigil", overwrite=False)
        with pytest.raises(GrafanaConflict) as e:
            provision_over_api(spec, c)
    assert "'Vigil · recommender'" in str(e.value) and "'vigil'" in str(e.value)
    users = grafana.dashboards["users-own"]
    assert users.model["panels"] == [{"id": 7}] and users.version == 1, "the user's dashboard must be left alone"


def test_updating_our_own_dashboard_does_not_send_overwrite(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        provision_over_api(spec, c)
        grafana.edit_dashboard("vigil-recommender", {"panels": []})
        report = provision_over_api(spec, c)
    assert report.updated == ["vigil-recommender"]
    assert all(c.body["overwrite"] is False for c in grafana.calls("POST", "/api/dashboards/db"))


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


def test_provisioning_again_on_grafana_12_whose_folder_api_answers_412_for_an_existing_uid(
        spec: DashboardSpec) -> None:
    """Grafana 12 answers a folder create for a uid it has with 412 version-mismatch (its
    folder store's AlreadyExists), not 409: every run after the first (each daemon start)
    failed there, and a model added since never got its dashboard."""
    with FakeGrafana(tokens={TOKEN: "admin"}, k8s_folders=True) as g, client(g) as c:
        provision_over_api(spec, c)
        g.dashboards.pop(build_all(spec)[-1]["uid"])  # a model's dashboard still to make
        second = provision_over_api(spec, c)
        assert [call.status for call in g.calls("POST", "/api/folders")] == [200, 412]
    assert not second.folder_created and second.created == [build_all(spec)[-1]["uid"]]


def test_a_hand_edited_dashboard_is_put_back(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        provision_over_api(spec, c)
        grafana.edit_dashboard("vigil-recommender", {"title": "edited by hand", "panels": []})
        report = provision_over_api(spec, c)
    assert report.updated == ["vigil-recommender"] and len(report.unchanged) == 3
    stored = grafana.dashboards["vigil-recommender"]
    assert stored.model["title"] == "Vigil · recommender" and stored.version == 3
    assert stored.model["panels"] == next(d for d in build_all(spec) if d["uid"] == "vigil-recommender")["panels"]


@pytest.mark.parametrize("grafana_12", [False, True])
def test_putting_back_a_dashboard_someone_edited_in_grafana_says_so(
        spec: DashboardSpec, grafana_12: bool, caplog: pytest.LogCaptureFixture) -> None:
    """A person's edit in Grafana's UI was replaced on the next start without a word; the run
    now names the dashboard, who saved it and the version to restore. A change Vigil made
    itself (its own saves carry its message) is no one's edit."""
    with FakeGrafana(tokens={TOKEN: "admin"}, k8s_folders=grafana_12) as g, client(g) as c:
        provision_over_api(spec, c)
        g.edit_dashboard("vigil-recommender", {"panels": []}, by="alice", message="tidied up")
        g.edit_dashboard("vigil-overview", {"title": "Vigil"}, by="sa-vigil", message="provisioned by vigil")
        with caplog.at_level("WARNING", logger="dashboards.provisioning"):
            report = provision_over_api(spec, c)
    assert sorted(report.updated) == ["vigil-overview", "vigil-recommender"]
    assert report.hand_edits == ["vigil-recommender (version 2 by alice: 'tidied up')"]
    assert "1 edited in Grafana put back: vigil-recommender (version 2 by alice" in report.summary()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "vigil-recommender" in warning and "alice" in warning and "version 2" in warning


def test_a_failing_history_lookup_never_keeps_a_dashboard_unsaved(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    with client(grafana) as c:
        provision_over_api(spec, c)
        grafana.edit_dashboard("vigil-recommender", {"panels": []})
        grafana.force(500, path="/api/dashboards/uid/vigil-recommender/versions")
        report = provision_over_api(spec, c)
    assert report.updated == ["vigil-recommender"] and report.hand_edits == []


def test_dashboards_grafana_provisions_from_files_do_not_stop_the_others(
        grafana: FakeGrafana, config: VigilConfig, caplog: pytest.LogCaptureFixture) -> None:
    """With the files of `vigil dashboards --out` in Grafana and `provision_on_start` on (as in
    the example config), a model added later changed the overview (and Vigil's own), which Grafana
    refuses to save over the API (400 'Cannot save provisioned dashboard'): the run stopped there, so the
    new model never got its dashboard, and the log said only Grafana's words."""
    older = dashboard_specs(sample_config(models=config.model_dump()["models"][:1]))
    with client(grafana) as c:
        provision_over_api(older, c)
        for uid in list(grafana.dashboards):
            grafana.dashboards[uid].provisioned = True  # as Grafana's file provider had saved them
        with caplog.at_level("WARNING", logger="dashboards.provisioning"):
            report = provision_over_api(dashboard_specs(config), c)
    new_uid = build_all(dashboard_specs(config))[-1]["uid"]
    assert report.created == [new_uid] and new_uid in grafana.dashboards
    assert report.from_files == ["vigil-overview", "vigil-self"], report  # both list the models
    assert "2 provisioned from files left as they are: vigil-overview, vigil-self" in report.summary()
    assert any("vigil dashboards --out" in r.getMessage() for r in caplog.records), caplog.text


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
    assert report.folder_created and len(report.created) == 4
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
    assert "4 created" in out and f"{grafana.url}/d/vigil-recommender" in out
    assert run_dashboards(config, None, grafana.url, None) == 0
    assert "4 unchanged" in capsys.readouterr().out
    assert run_dashboards(config, None, grafana.url, "wrong") == 1
    assert "refused" in capsys.readouterr().err
    grafana.down()
    assert run_dashboards(config, None, grafana.url, None) == 2
    assert "Run it again when Grafana is up" in capsys.readouterr().err
    assert run_dashboards(sample_config(grafana={}), None, None, None) == 64


def test_a_same_titled_folder_with_another_uid_is_explained(grafana: FakeGrafana, spec: DashboardSpec) -> None:
    grafana.folders["team"] = {"id": 99, "uid": "team", "title": "Vigil"}
    with client(grafana) as c, pytest.raises(GrafanaRequestError, match="set grafana.folder_uid to that folder's uid"):
        provision_over_api(spec, c)
    assert grafana.dashboards == {}


def test_the_daemon_takes_the_grafana_token_from_the_environment_as_the_cli_does(
        grafana: FakeGrafana, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vigil dashboards` falls back to $GRAFANA_TOKEN; the daemon did not: with the token
    only in the environment its provisioning got 401 with the hint "set GRAFANA_TOKEN" (it
    was set), and its annotations were silently off."""
    from monitor.notifiers import default_notifiers

    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    cfg = sample_config(grafana={"url": grafana.url, "provision_on_start": True},
                        slack={"sink_path": str(tmp_path / "alerts.jsonl")})
    report = provision_on_start(cfg)
    assert report is not None and len(report.created) == len(build_all(dashboard_specs(cfg)))
    assert "grafana" in default_notifiers(cfg)


def test_a_slow_grafana_does_not_hold_back_the_first_cycles(grafana: FakeGrafana, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """grafana.provision_on_start ran before the scheduler and the API started: with a
    Grafana answering in 3 s (one GET and one POST per dashboard, 1,000 models -> hours; a
    hanging one: 30 s per try), no model was watched and, on PostgreSQL, the leases just
    taken lapsed. Provisioning now runs beside the cycles."""
    import threading
    import time

    from monitor.daemon import run_daemon
    from tests.helpers_vigil import MODEL, incident_prometheus, make_config, make_vigil, metric_value, model_config

    grafana.delay(3.0, count=100)
    monkeypatch.setenv("VIGIL_TEST_GRAFANA_TOKEN", TOKEN)
    cfg = make_config(tmp_path, models=[model_config()], schedule={"interval": "1s"},
                      grafana={"url": grafana.url, "token": "${VIGIL_TEST_GRAFANA_TOKEN}", "provision_on_start": True})
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={})
    stop, result = threading.Event(), []
    worker = threading.Thread(target=lambda: result.append(run_daemon(cfg, serve_api=False, vigil=vigil, stop=stop)),
                              daemon=True)
    began = time.monotonic()
    worker.start()
    try:
        while not metric_value(vigil, "vigil_cycle_duration_seconds_count", model=MODEL) and not result:
            assert time.monotonic() - began < 8, "no cycle while Grafana was being provisioned"
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=15)
    assert result == [0]


def test_provisioning_says_when_the_tokens_organization_is_not_the_one_slack_links_name(spec: DashboardSpec) -> None:
    """The dashboards land in the organization of the token's service account; Slack links name
    grafana.org_id. With the account in org 2 and org_id set to 1, every link opened org 1
    ("Dashboard not found") and nothing said why: provisioning now says which to set. Unset,
    links name no org (the viewer's current one), so there is nothing to say."""
    with FakeGrafana(tokens={TOKEN: "admin"}, org_id=2) as g, client(g) as c:
        first = provision_over_api(spec, c)
        assert first.org_mismatch is None  # org_id unset: links name no org, the viewer's own
        assert len(first.created) == len(build_all(spec))  # into org 2, the token's
        report = provision_over_api(dashboard_specs(sample_config(grafana={"org_id": 1})), c)
        assert report.org_mismatch is not None
        assert "organization 2 (Org 2)" in report.summary() and "set grafana.org_id: 2" in report.summary()
        again = provision_over_api(dashboard_specs(sample_config(grafana={"org_id": 2})), c)
        assert again.org_mismatch is None and "org_id" not in again.summary()


def test_the_printed_dashboard_links_are_the_ones_slack_gives(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`vigil dashboards` printed {url}/d/{uid}: a viewer whose current Grafana organization was
    another got "Dashboard not found" where Slack's link (grafana.public_url, ?orgId=) opened it."""
    from alerts.links import grafana_url

    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    public = "https://grafana.example.com"
    cfg = sample_config(grafana={"url": grafana.url, "public_url": public, "org_id": 3})
    assert run_dashboards(cfg, None, None, None) == 0
    printed = [x.strip() for x in capsys.readouterr().out.splitlines() if "/d/" in x]
    slack = grafana_url(public, "vigil-recommender", 0.0, 60.0, org_id=3)  # as incident messages build it
    assert f"{public}/d/vigil-recommender?orgId=3" in printed, printed
    assert slack.startswith(f"{public}/d/vigil-recommender?orgId=3&"), slack


def test_cli_refuses_a_prometheus_datasource_uid_grafana_does_not_have(
        config: VigilConfig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`vigil dashboards --grafana-url` saved every dashboard on a Grafana whose Prometheus data
    source (made in its UI) had a generated uid, not `prom`: each panel said "data source not found"."""
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    with FakeGrafana(tokens={TOKEN: "admin"}) as g:
        g.add_datasource("P1809F7CD0C75ACF3", "prometheus")
        g.add_datasource("loki", "loki")
        assert run_dashboards(config, None, g.url, None) == 1
        assert g.dashboards == {} and g.writes() == [], "nothing saved"
        err = capsys.readouterr().err
        assert "grafana.prometheus_datasource_uid is 'prom'" in err and "404 Data source not found" in err, err
        assert "/connections/datasources/edit/<uid>" in err and f"{g.url}/api/datasources" in err
        assert "grafana.tempo_datasource_uid is 'tempo'" in err, "tempo is configured: its uid is checked too"
        assert "loki_datasource_uid" not in err
        fixed = sample_config(grafana={"prometheus_datasource_uid": "P1809F7CD0C75ACF3",
                                       "tempo_datasource_uid": "loki"})
        assert run_dashboards(fixed, None, g.url, None) == 0
        assert "4 created" in capsys.readouterr().out
        without_traces = sample_config(sources={"prometheus": {"url": "http://prometheus:9090"}},
                                       grafana={"prometheus_datasource_uid": "P1809F7CD0C75ACF3"})
        asked = len(g.calls("GET", "/api/datasources/"))
        assert run_dashboards(without_traces, None, g.url, None) == 0
        assert len(g.calls("GET", "/api/datasources/")) == asked + 1, "only the uids the dashboards use"


def test_with_out_a_missing_datasource_is_a_warning(config: VigilConfig, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The files written by --out make the data sources when Grafana next starts."""
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    with FakeGrafana(tokens={TOKEN: "admin"}) as g:
        assert run_dashboards(config, str(tmp_path), g.url, None) == 0
        assert "warning: grafana.prometheus_datasource_uid is 'prom'" in capsys.readouterr().err
        assert g.dashboards
