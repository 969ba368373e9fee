"""The embedded demo, end to end: real Prometheus (backfilled), real MLflow registry (SQLite),
the production cycle under a replay clock. Asserts the four outcomes the README promises."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import subprocess
import sys

import pytest

from monitor.cli import main
from monitor.replay.demo import SECOND_MODEL, TIMES
from monitor.replay.demo_labels import CHURN, shift_span

pytestmark = pytest.mark.integration

H = 3600.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("demo")
    gather_log = _Records()
    logging.getLogger("vigil.gather").addHandler(gather_log)
    try:
        assert main(["--log-level", "WARNING", "demo", "--out", str(out), "--quiet"]) == 0
    finally:
        logging.getLogger("vigil.gather").removeHandler(gather_log)
    incidents = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    notes = [json.loads(line) for line in (out / "incidents.notifications.jsonl").read_text().splitlines()]
    return {"out": out, "incidents": incidents, "notifications": notes, "gather_log": gather_log.records}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_error_ratio_is_judged_with_its_volume(demo):
    """The demo's error-rate SLO names the requests behind it (`volume_query`): every cycle
    read it and matched it to the ratio, nothing was said about it."""
    assert not [r.getMessage() for r in demo["gather_log"] if "volume" in r.getMessage()]


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
    incs = [i for i in demo["incidents"] if i["model"] == "recommender"]
    assert opened_between(incs, TIMES.replay_start, TIMES.deploy_v2) == []
    assert opened_between(incs, TIMES.surge_end, TIMES.replay_end + 1) == []
    assert all(i["resolved_at"] is not None and i["resolved_at"] <= TIMES.quiet_from for i in incs)
    assert len([i for i in incs if i["model"] == "recommender"]) == 3
    # the reranker shares the GPU node: it has an incident in the surge and nowhere else
    rer = [i for i in demo["incidents"] if i["model"] == SECOND_MODEL]
    assert len(rer) == 1 and TIMES.surge_start <= rer[0]["opened_at"] < TIMES.surge_end



def test_5_a_failing_canary_is_pulled_and_the_incident_says_which_metric_by_how_much(demo):
    from monitor.replay.demo_canary import RANKER, canary_times

    start, _ = canary_times(TIMES.replay_start - 8 * H)
    (inc,) = [i for i in demo["incidents"] if i["model"] == RANKER]
    assert start < inc["opened_at"] < start + 0.5 * H and inc["severity"] == "warning"
    (fail,) = [f for f in inc["findings"] if f["kind"] == "canary_fail"]
    assert fail["entity"] == "error_rate" and fail["statistic"] == "absolute"
    assert fail["value"] > fail["threshold"] == 0.05  # the challenger's error rate next to the rule
    assert "canary v2 vs champion v1" in fail["message"]
    assert (inc["causes"][0]["kind"], inc["causes"][0]["entity"]) == ("canary", "ranker v2 (challenger)")
    (pull,) = inc["actions"]
    assert (pull["kind"], pull["status"], pull["from_version"], pull["to_version"]) == ("canary_pull", "done", "2",
                                                                                       "1")
    assert inc["resolved_at"] is not None
    # The challenger alias is gone from the real registry, the champion untouched; both audited.
    from monitor.config import MlflowConfig
    from monitor.replay.local_mlflow import sqlite_tracking_uri
    from monitor.sources.registry import RegistrySource

    work = demo["out"] / "work"
    registry = RegistrySource(MlflowConfig(tracking_uri=sqlite_tracking_uri(work / "mlflow.db")))
    assert registry.alias_version(RANKER, "challenger") is None
    assert registry.alias_version(RANKER, "champion") == "1"
    con = sqlite3.connect(work / "vigil-replay.db")
    actions = [r[0] for r in con.execute("select action from audit_log order by seq")]
    assert actions.index("canary.pull.requested") < actions.index("canary.pull.done")
    # The owner's message carries the verdict table and says what Vigil did.
    last = [n for n in demo["notifications"] if n["kind"] == "incident"
            and n["payload"]["incident_id"] == inc["id"]][-1]["payload"]
    assert last["channel"] == "#ranker-owners"
    shown = next(f for f in last["findings"] if f["kind"] == "canary_fail")
    table = {row["metric"]: row for row in shown["evidence"]["verdict_table"]}
    assert table["error_rate"]["verdict"] == "fail" and table["error_rate"]["champion"] < 0.02
    assert any(a["kind"] == "canary_pull" for a in last["actions"])



def test_5_a_gpu_shared_by_two_models_pages_once_for_both_and_escalation_is_a_threaded_reply(demo):
    notes, incs = demo["notifications"], demo["incidents"]
    (surge,) = opened_between(incs, TIMES.surge_start, TIMES.surge_end)
    (ranker,) = opened_between(incs, TIMES.surge_start, TIMES.surge_end, SECOND_MODEL)
    assert ranker["causes"][0]["entity"] == surge["causes"][0]["entity"]  # one GPU, one cause

    groups = [n for n in notes if n["kind"] == "group"]
    first = [n for n in groups if n["payload"]["change"] == "first"]
    assert sorted(n["payload"]["channel"] for n in first) == ["#ml-oncall", "#ranking-owners", "#recsys-owners"]
    listed = {m["model"]: m for m in first[0]["payload"]["models"]}
    assert set(listed) == {"recommender", SECOND_MODEL}
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
        if inc["model"] == SECOND_MODEL:
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
    gpu = next(i["id"] for i in demo["incidents"] if i["causes"] and i["causes"][0]["kind"] == "gpu_saturation")
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


def test_5_delayed_labels_raise_an_accuracy_drop_its_inputs_never_showed(demo):
    (inc,) = [i for i in demo["incidents"] if i["model"] == CHURN]
    shift_start, shift_end = shift_span(TIMES)
    # Labels land 30-60 minutes after each prediction: the alert comes once enough have, not before.
    assert shift_start + 60 * 60 <= inc["opened_at"] <= shift_end + 30 * 60
    assert inc["severity"] == "critical" and inc["resolved_at"] is not None
    acc = next(f for f in inc["findings"] if f["kind"] == "performance_drop" and f["entity"] == "accuracy")
    assert acc["value"] <= -10 and acc["threshold"] == -10
    assert "realised accuracy" in acc["message"] and "coverage" in acc["message"]
    assert "median label delay" in acc["message"]
    assert not [f for f in inc["findings"] if f["kind"] in ("feature_drift", "prediction_drift")]
    assert {n["channel"] for n in inc["notifications"]} == {"#churn-owners"}
    # The Slack payload carries the CBPE estimate beside the realised figure: it still looks
    # fine, which is why a concept shift needs labels.
    note = next(n for n in demo["notifications"]
                if n["kind"] == "incident" and n["payload"]["incident_id"] == inc["id"])
    ev = next(f["evidence"] for f in note["payload"]["findings"] if f["entity"] == "accuracy")
    assert ev["estimated"]["accuracy"] > 0.8 > ev["realised"]["accuracy"] and 0 < ev["coverage"] < 1


def test_5_the_api_reports_realised_beside_estimated_per_window(demo):
    import yaml
    from fastapi.testclient import TestClient

    from monitor.api.app import create_app
    from monitor.config import parse_config
    from monitor.store.repository import Store
    from monitor.vigil import Vigil

    work, bundle = demo["out"] / "work", demo["out"] / "bundle"
    token = "demo-viewer-token-6a0f3e"
    data = yaml.safe_load((bundle / "vigil.yaml").read_text())
    data["api"] = {"tokens": [{"name": "reader", "role": "viewer",
                               "token_sha256": hashlib.sha256(token.encode()).hexdigest()}]}
    cfg = parse_config(data, base_dir=str(bundle))
    vigil = Vigil(cfg, store=Store(f"sqlite:///{work / 'vigil-replay.db'}"), prometheus=object(),
                  registry=object(), notifiers={})
    client = TestClient(create_app(vigil), headers={"Authorization": f"Bearer {token}"})
    report = client.get(f"/v1/models/{CHURN}/performance").json()
    shift_start, _ = shift_span(TIMES)
    (shifted,) = [w for w in report["windows"] if w["start"] == shift_start]
    assert shifted["coverage"] == 1.0 and shifted["realised"]["accuracy"] < 0.75
    assert shifted["estimated"]["accuracy"] > 0.8 and 30 * 60 < shifted["delay_median_s"] < 60 * 60
    assert report["reference"]["accuracy"] > 0.8


def test_a_second_demo_into_the_same_folder_replays_from_the_start(demo):
    """`make demo` twice (two processes): the second run does not continue the first one's
    store (which had already delivered every message, so no notifications file was written)
    or registry."""
    out = demo["out"]
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "demo", "--out", str(out),
                          "--quiet"], capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    again = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    notes = (out / "incidents.notifications.jsonl").read_text().splitlines()
    assert [(i["model"], i["opened_at"], i["severity"]) for i in again] == \
        [(i["model"], i["opened_at"], i["severity"]) for i in demo["incidents"]]
    assert len(notes) == len(demo["notifications"])
