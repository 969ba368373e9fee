"""The embedded demo, end to end: real Prometheus (backfilled), real MLflow registry (SQLite),
the production cycle under a replay clock. Asserts the four outcomes the README promises."""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3

import pytest

from monitor.cli import main
from monitor.replay.demo import TIMES

pytestmark = pytest.mark.integration

H = 3600.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("demo")
    assert main(["--log-level", "WARNING", "demo", "--out", str(out), "--quiet"]) == 0
    incidents = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    notes = [json.loads(line) for line in (out / "incidents.notifications.jsonl").read_text().splitlines()]
    return {"out": out, "incidents": incidents, "notifications": notes}


def opened_between(incidents: list[dict], a: float, b: float, model: str | None = "recommender") -> list[dict]:
    return [i for i in incidents if a <= i["opened_at"] < b and (model is None or i["model"] == model)]


def test_incident_records_have_the_documented_fields(demo):
    for inc in demo["incidents"]:
        assert {"id", "model", "opened_at", "resolved_at", "severity", "title", "causes", "notifications",
                "actions"} <= inc.keys()
        for c in inc["causes"]:
            assert {"kind", "entity", "score", "evidence"} <= c.keys()


def test_1_bad_deploy_is_critical_blamed_on_the_deploy_and_rolled_back(demo):
    (inc,) = opened_between(demo["incidents"], TIMES.deploy_v2, TIMES.deploy_v2 + 0.5 * H)
    assert inc["severity"] == "critical"
    top = inc["causes"][0]
    assert top["kind"] == "deploy" and top["entity"] == "recommender v2" and top["score"] >= 0.6
    kinds = {f["kind"] for f in inc["findings"]}
    assert {"kpi_drop", "prediction_drift"} <= kinds
    kpi = next(f for f in inc["findings"] if f["kind"] == "kpi_drop")
    assert kpi["threshold"] == -5.0
    (rb,) = [a for a in inc["actions"] if a["status"] == "done"]
    assert (rb["from_version"], rb["to_version"], rb["actor"]) == ("2", "1", "vigil")
    assert rb["at"] < TIMES.deploy_v2 + 15 * 60  # acted within minutes, not hours
    assert inc["resolved_at"] is not None


def test_1_rollback_moved_the_real_registry_alias_and_is_audited(demo):
    from monitor.config import MlflowConfig
    from monitor.replay.local_mlflow import sqlite_tracking_uri
    from monitor.sources.registry import RegistrySource

    work = demo["out"] / "work"
    registry = RegistrySource(MlflowConfig(tracking_uri=sqlite_tracking_uri(work / "mlflow.db")))
    assert registry.alias_version("recommender", "champion") == "1"
    store_url = f"sqlite:///{work / 'vigil-replay.db'}"
    assert main(["audit", "verify", "--store", store_url]) == 0
    con = sqlite3.connect(work / "vigil-replay.db")
    actions = [r[0] for r in con.execute("select action from audit_log order by seq")]
    assert actions.index("rollback.requested") < actions.index("rollback.done")


def test_audit_verify_detects_tampering(demo, tmp_path):
    copy = tmp_path / "tampered.db"
    shutil.copy(demo["out"] / "work" / "vigil-replay.db", copy)
    con = sqlite3.connect(copy)
    con.execute("update audit_log set actor = 'mallory' where seq = 1")
    con.commit()
    con.close()
    assert main(["audit", "verify", "--store", f"sqlite:///{copy}"]) == 1


def test_2_upstream_drift_without_deploy_warns_the_owner_only(demo):
    (inc,) = opened_between(demo["incidents"], TIMES.drift_start, TIMES.drift_end)
    assert inc["severity"] == "warning"
    top = inc["causes"][0]
    assert top["kind"] == "upstream_drift" and "session_length" in top["entity"]
    assert all(c["kind"] != "deploy" for c in inc["causes"])
    assert inc["actions"] == []
    channels = {n["channel"] for n in inc["notifications"]}
    assert channels == {"#recsys-owners"}


def test_3_gpu_saturation_breaches_latency_slo_and_is_not_rolled_back(demo):
    (inc,) = opened_between(demo["incidents"], TIMES.surge_start, TIMES.surge_end)
    assert inc["severity"] == "critical"
    assert inc["causes"][0]["kind"] == "gpu_saturation"
    slo = [f for f in inc["findings"] if f["kind"] == "slo_breach"]
    assert slo and slo[0]["entity"] == "p99_latency" and slo[0]["value"] > slo[0]["threshold"] == 0.5
    assert inc["actions"] == []
    assert {"#recsys-owners", "#ml-oncall"} <= {n["channel"] for n in inc["notifications"]}


def test_4_quiet_stretches_raise_nothing(demo):
    incs = demo["incidents"]
    assert opened_between(incs, TIMES.replay_start, TIMES.deploy_v2, None) == []
    assert opened_between(incs, TIMES.surge_end, TIMES.replay_end + 1, None) == []
    assert all(i["resolved_at"] is not None and i["resolved_at"] <= TIMES.quiet_from for i in incs)
    assert sorted(i["model"] for i in incs) == ["ranker"] + ["recommender"] * 3  # the ranker only in the surge


def test_5_a_gpu_shared_by_two_models_pages_once_for_both_and_escalation_is_a_threaded_reply(demo):
    notes, incs = demo["notifications"], demo["incidents"]
    (surge,) = opened_between(incs, TIMES.surge_start, TIMES.surge_end)
    (ranker,) = opened_between(incs, TIMES.surge_start, TIMES.surge_end, "ranker")
    assert ranker["causes"][0]["entity"] == surge["causes"][0]["entity"]  # one GPU, one cause

    groups = [n for n in notes if n["kind"] == "group"]
    first = [n for n in groups if n["payload"]["change"] == "first"]
    assert sorted(n["payload"]["channel"] for n in first) == ["#ml-oncall", "#ranking-owners", "#recsys-owners"]
    listed = {m["model"]: m for m in first[0]["payload"]["models"]}
    assert set(listed) == {"recommender", "ranker"}
    assert {m["incident_id"] for m in listed.values()} == {surge["id"], ranker["id"]}
    assert all(m["findings"] for m in listed.values()), "each model's evidence is listed"
    assert "2 models share one cause: gpu_saturation" in first[0]["text"]
    assert groups[-1]["payload"]["status"] == "resolved"
    # the ranker never paged on its own: the group spoke for it
    assert not [n for n in notes if n["kind"] == "incident" and n["payload"]["incident_id"] == ranker["id"]]
    assert any("shared cause" in r for r in ranker["reasons"])

    # the surge's warning turned critical: a reply in the owner message's thread, @-mentioning on-call
    (escalated,) = [n for n in notes if n["kind"] == "reply" and n["payload"]["change"] == "escalated"
                    and n["payload"].get("incident_id") == surge["id"]]
    assert escalated["key"] == f"incident:{surge['id']}:#recsys-owners"  # the parent message's key: its thread
    assert escalated["payload"]["mentions"] == ["<!subteam^S0MLONCALL>"]
    assert "escalated to *critical* (was warning)" in escalated["text"]


def test_notifications_update_one_message_per_incident_and_channel(demo):
    messages = [n for n in demo["notifications"] if n["kind"] == "incident"]
    keys = {n["key"] for n in messages}
    for inc in demo["incidents"]:
        if inc["model"] == "ranker":
            continue  # paged only through the shared cause (test_5)
        mine = [n for n in messages if n["payload"]["incident_id"] == inc["id"]]
        assert mine, "every incident notified someone"
        assert mine[-1]["payload"]["status"] == "resolved"
        assert {n["key"] for n in mine} <= keys
        # the same key is reused for updates: Slack edits one message per channel
        assert len({n["key"] for n in mine}) == len({n["payload"]["channel"] for n in mine})


def test_drift_incidents_get_evidently_reports_served_by_the_api(demo):
    from fastapi.testclient import TestClient

    from monitor.api.app import create_app
    from monitor.config import parse_config
    from monitor.store.repository import Store
    from monitor.vigil import Vigil

    work = demo["out"] / "work"
    token = "demo-viewer-token-6a0f3e"
    cfg = parse_config({"api": {"tokens": [{"name": "reader", "role": "viewer",
                                            "token_sha256": hashlib.sha256(token.encode()).hexdigest()}]},
                        "models": [{"name": "recommender"}]}, base_dir=str(work))
    vigil = Vigil(cfg, store=Store(f"sqlite:///{work / 'vigil-replay.db'}"), prometheus=object(),
                  registry=object(), notifiers={})
    client = TestClient(create_app(vigil), headers={"Authorization": f"Bearer {token}"})
    drift_ids = [i["id"] for i in demo["incidents"]
                 if any(f["kind"] in ("feature_drift", "prediction_drift") for f in i["findings"])]
    assert drift_ids
    for incident_id in drift_ids:
        r = client.get(f"/v1/incidents/{incident_id}/drift-report")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "Dataset Drift" in r.text and len(r.text) > 100_000  # Evidently's own preset, self-contained
        inc = next(i for i in demo["incidents"] if i["id"] == incident_id)
        drifted = [f["entity"] for f in inc["findings"] if f["kind"] in ("feature_drift", "prediction_drift")]
        assert all(name in r.text for name in drifted)
    gpu = next(i["id"] for i in demo["incidents"] if i["causes"][0]["kind"] == "gpu_saturation")
    assert client.get(f"/v1/incidents/{gpu}/drift-report").status_code == 404
    # and the Slack message links to it
    linked = [n for n in demo["notifications"]
              if n["kind"] == "incident" and n["payload"]["incident_id"] == drift_ids[0]]
    assert linked[-1]["payload"]["links"]["drift_report"].endswith(f"/v1/incidents/{drift_ids[0]}/drift-report")
    # a process that ran no cycle (this one) answers GET /v1/models from the store: the last
    # cycle of the replay, and the drift per feature it measured
    m = client.get("/v1/models/recommender").json()
    assert m["last_cycle"]["at"] is not None and m["last_cycle"]["step"]
    assert {"user_age", "session_length", "score"} <= set(m["drift"]) and "psi" in m["drift"]["session_length"]
    assert m["open_incident"] is None  # every demo incident resolved


def test_demo_messages_link_to_grafana_around_the_onset_and_say_it_in_words(demo):
    from urllib.parse import parse_qs, urlsplit

    from alerts.slack_blocks import render_incident

    for note in demo["notifications"]:
        p = note["payload"]
        if "incident_id" not in p or "links" not in p:
            continue
        inc = next(i for i in demo["incidents"] if i["id"] == p["incident_id"])
        url = p["links"]["grafana"]
        assert url.startswith("http://127.0.0.1:3000/d/")
        q = parse_qs(urlsplit(url).query)
        assert int(q["from"][0]) < inc["onset"] * 1000 < int(q["to"][0])
        body = json.dumps(render_incident(p)[1])
        assert "value_vs_expected" not in body and "kpi_change_pct" not in body
    latency = next(i for i in demo["incidents"] if i["causes"] and i["causes"][0]["kind"] == "gpu_saturation")
    last = [n["payload"] for n in demo["notifications"] if n["payload"].get("incident_id") == latency["id"]][-1]
    texts = [e["text"] for b in render_incident(last)[1] if b["type"] == "context" for e in b["elements"]]
    assert not any("Cold start" in t for t in texts)  # a latency incident: no drift banner
