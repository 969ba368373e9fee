"""Performance from delayed labels through the real cycle and API, as a user meets it:
labels posted after the predictions, a drop alerted in the cycle after they arrive, the
report (realised beside estimated, coverage, delay) from the API and /metrics, a window
with too few labels saying so, label files, and bad batches refused naming the field."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from tests.helpers_vigil import T0, make_config, make_vigil, metric_value, model_config

H = 3600.0
INGEST, VIEWER = "ingest-token-4f1c9a7e", "viewer-token-77d2b1c0"
REF_START, REF_END = T0 - 3 * 86400, T0 - 2 * 86400


def _hour(start: float, n: int, accuracy: float, seed: int) -> pd.DataFrame:
    """n predictions in the hour from `start`, with confident calibrated-looking scores; the
    truth agrees with the prediction `accuracy` of the time (hidden in `_truth`)."""
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, 2, n)
    score = np.where(pred == 1, rng.uniform(0.8, 1.0, n), rng.uniform(0.0, 0.2, n))
    truth = np.where(rng.random(n) < accuracy, pred, 1 - pred)
    return pd.DataFrame({"timestamp": start + np.linspace(0, H - 1, n), "prediction_id": [f"{seed}-{i}" for i in
                                                                                          range(n)],
                         "churn_pred": pred, "churn_score": score, "model_version": "1", "_truth": truth})


def _world(tmp_path: Path) -> pd.DataFrame:
    """The reference day (accuracy 0.9), then hourly predictions up to T0; the last hour is bad."""
    hours = [_hour(REF_START + i * H, 200, 0.9, 1000 + i) for i in range(24)]
    hours += [_hour(T0 - k * H, 300, 0.9 if k > 1 else 0.6, k) for k in range(12, 0, -1)]
    world = pd.concat(hours, ignore_index=True)
    (tmp_path / "samples").mkdir()
    world.drop(columns="_truth").to_csv(tmp_path / "samples" / "predictions.csv", index=False)
    return world


def _config(tmp_path: Path, **perf: Any) -> Any:
    performance = {"task": "classification", "prediction_column": "churn_pred", "probability_column": "churn_score",
                   "reference": {"start": REF_START, "end": REF_END}, "window": "1h", "horizon": "1d",
                   "min_labels": 100, **perf}
    m = model_config("churn", kpis=[], slos=[], samples={"path": "samples"}, performance=performance)
    tokens = [{"name": "feeder", "role": "ingest", "token_sha256": hashlib.sha256(INGEST.encode()).hexdigest()},
              {"name": "vera", "role": "viewer", "token_sha256": hashlib.sha256(VIEWER.encode()).hexdigest()}]
    return make_config(tmp_path, models=[m], api={"tokens": tokens})


def _labels(rows: pd.DataFrame, at: float) -> list[dict[str, Any]]:
    return [{"prediction_id": pid, "label": int(y), "timestamp": at}
            for pid, y in zip(rows["prediction_id"], rows["_truth"], strict=True)]


def _post(client: TestClient, labels: list[dict[str, Any]], token: str = INGEST) -> Any:
    return client.post("/v1/labels", json={"model": "churn", "labels": labels},
                       headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def world(tmp_path: Path) -> tuple[Any, TestClient, pd.DataFrame]:
    frame = _world(tmp_path)
    vigil = make_vigil(_config(tmp_path))
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    # The reference's labels, and those of every hour but the last two, arrived an hour after each prediction.
    old = frame[frame["timestamp"] < T0 - 2 * H]
    assert _post(client, _labels(old, T0 - 2 * H)).status_code == 202
    return vigil, client, frame


def test_an_accuracy_drop_alerts_in_the_cycle_after_its_labels_arrive(world: tuple) -> None:
    vigil, client, frame = world
    before = vigil.run_cycle("churn", T0)
    assert not [f for f in before.findings if f.kind == "performance_drop"] and before.severity is None
    report = client.get("/v1/models/churn/performance", headers={"Authorization": f"Bearer {VIEWER}"}).json()
    last = report["windows"][-1]
    assert last["start"] == T0 - H and last["labelled"] == 0 and last["realised"] is None
    assert "0 labels, fewer than the 100 needed" in last["note"] and last["estimated"]["accuracy"] > 0.85

    bad = frame[(frame["timestamp"] >= T0 - 2 * H)]
    assert _post(client, _labels(bad, T0 + 30)).json() == {"accepted": len(bad), "model": "churn"}
    after = vigil.run_cycle("churn", T0 + 60)
    acc = next(f for f in after.findings if f.kind == "performance_drop" and f.entity == "accuracy")
    assert after.severity == "critical" and acc.evidence["basis"] == "realised"
    assert acc.value < -10 and acc.window_start == T0 - H
    assert "coverage 100%" in acc.message and "version 1" in acc.message

    report = client.get("/v1/models/churn/performance", headers={"Authorization": f"Bearer {VIEWER}"}).json()
    last = report["windows"][-1]
    assert last["realised"]["accuracy"] == pytest.approx(0.6, abs=0.08)
    assert last["estimated"]["accuracy"] > 0.85  # CBPE cannot see a concept shift: side by side, it shows
    assert last["coverage"] == 1.0 and 0 < last["delay_median_s"] < H + 60
    assert report["reference"]["accuracy"] == pytest.approx(0.9, abs=0.04) and report["reference_labels"] == 4800
    assert metric_value(vigil, "vigil_model_performance", model="churn", metric="accuracy",
                        basis="realised") == pytest.approx(last["realised"]["accuracy"])
    assert metric_value(vigil, "vigil_label_coverage_ratio", model="churn") == 1.0
    assert metric_value(vigil, "vigil_labels_total", model="churn") == len(frame)  # every label posted, once


def test_too_few_labels_say_so_and_alert_nothing(world: tuple) -> None:
    vigil, client, frame = world
    bad = frame[frame["timestamp"] >= T0 - H]
    _post(client, _labels(bad.iloc[:40], T0 + 30))
    report = vigil.run_cycle("churn", T0 + 60)
    assert not [f for f in report.findings if f.kind == "performance_drop" and f.evidence["basis"] == "realised"]
    stored = vigil.store.labels.report("churn")
    assert "40 labels, fewer than the 100 needed" in stored["windows"][-1]["note"]


def test_label_files_are_read_like_posted_labels(tmp_path: Path) -> None:
    frame = _world(tmp_path)
    (tmp_path / "labels").mkdir()
    done = frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"])[["prediction_id", "label",
                                                                                     "timestamp"]]
    done.to_csv(tmp_path / "labels" / "day.csv", index=False)
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    out = vigil.run_cycle("churn", T0 + 1200)
    assert any(f.kind == "performance_drop" and f.entity == "accuracy" for f in out.findings)


@pytest.mark.parametrize(("label", "field", "words"), [
    ({"prediction_id": "a", "label": 2, "timestamp": T0}, "labels[1].label", "expected a class: 0 or 1"),
    ({"prediction_id": "a", "label": 1, "timestamp": "yesterday"}, "labels[1].timestamp", "expected RFC3339"),
    ({"prediction_id": "a", "timestamp": T0}, "labels.1.label", "required field is missing"),
    ({"prediction_id": 10**250, "label": 1, "timestamp": T0}, "labels[1].prediction_id", "at most 200 characters"),
    # A boolean id was stored as the id "1": every label sent that way joined prediction 1.
    ({"prediction_id": True, "label": 1, "timestamp": T0}, "labels.1.prediction_id", "expected a text or integer id"),
])
def test_a_bad_label_refuses_the_batch_naming_the_field(world: tuple, label: dict, field: str, words: str) -> None:
    vigil, client, _ = world
    kept = vigil.store.labels.count("churn")
    r = _post(client, [{"prediction_id": "ok", "label": 1, "timestamp": T0}, label])
    assert r.status_code == 422
    assert any(e["field"].endswith(field.split(".", 1)[1]) and words in e["message"] for e in r.json()["fields"])
    assert vigil.store.labels.count("churn") == kept  # nothing of the batch stored


@pytest.mark.parametrize(("label", "field", "words"), [
    ({"prediction_id": "a", "label": "1", "timestamp": T0}, "labels.0.label", "expected a number"),
    ({"prediction_id": "a", "label": None, "timestamp": T0}, "labels.0.label", "expected a number"),
    ({"prediction_id": "a", "label": 1, "timestamp": [T0]}, "labels.0.timestamp", "expected RFC3339 text or epoch"),
    ({"prediction_id": "a", "label": 1, "timestamp": True}, "labels.0.timestamp", "expected RFC3339 text or epoch"),
])
def test_a_label_field_of_the_wrong_type_is_one_error_naming_that_field(world: tuple, label: dict, field: str,
                                                                        words: str) -> None:
    """Not one error per branch of the schema's union, each naming a field the client never
    sent (`labels.0.label.float: Input should be a valid number`, `labels.0.label.bool: ...`)."""
    _, client, _ = world
    r = _post(client, [label])
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["fields"]] == [field]
    assert words in r.json()["fields"][0]["message"]


def test_labels_need_the_ingest_role_and_a_model_with_performance(world: tuple) -> None:
    _, client, _ = world
    one = [{"prediction_id": "x", "label": 1, "timestamp": T0}]
    assert _post(client, one, token=VIEWER).status_code == 403
    r = client.post("/v1/labels", json={"model": "nope", "labels": one}, headers={"Authorization": f"Bearer {INGEST}"})
    assert r.status_code == 404


def test_without_a_version_column_each_prediction_takes_the_version_serving_when_it_was_made(tmp_path: Path
                                                                                              ) -> None:
    """Without a version column every prediction of the horizon was given the version serving
    now: after v2 was rolled back to v1, v2's bad hours (their labels landing later) were
    v1's, and v1 was reported, and alerted, as the version whose accuracy dropped."""
    from detectors.records import DeployEvent

    frame = _world(tmp_path)
    frame.drop(columns=["_truth", "model_version"]).to_csv(tmp_path / "samples" / "predictions.csv", index=False)
    vigil = make_vigil(_config(tmp_path))
    alias = vigil.config.model("churn").alias
    with vigil.store.tx() as s:  # v1 served from the start; v2 for the bad last hour; then rolled back
        vigil.store.add_deploy(s, DeployEvent("churn", alias, "1", None, REF_START - 60, "observed"))
        vigil.store.add_deploy(s, DeployEvent("churn", alias, "2", "1", T0 - H, "registry"))
        vigil.store.add_deploy(s, DeployEvent("churn", alias, "1", "2", T0 + 10, "rollback"))
    m = vigil.config.model("churn")
    preds = vigil.performance._inputs.predictions(m, m.performance, T0 - 2 * H, T0 + 60, "1")
    made = preds.set_index("ts")["version"]
    assert set(made[made.index >= T0 - H]) == {"2"}, "the bad hour was served by v2"
    assert set(made[made.index < T0 - H]) == {"1"}


def test_performance_figures_no_longer_known_leave_metrics_rather_than_reading_as_current(world: tuple) -> None:
    """Once no window could be judged (no prediction in the horizon: the feed stopped), the
    last realised accuracy and coverage stayed in /metrics: the dashboard's performance
    row kept showing a healthy model that nothing measured any more."""
    vigil, _, _ = world
    sample = vigil.metrics.registry.get_sample_value
    vigil.run_cycle("churn", T0)
    assert sample("vigil_model_performance", {"model": "churn", "metric": "accuracy", "basis": "realised"})
    assert sample("vigil_model_performance", {"model": "churn", "metric": "accuracy", "basis": "estimated"})
    assert sample("vigil_label_coverage_ratio", {"model": "churn"}) is not None
    vigil.run_cycle("churn", T0 + 2 * 86400)  # the horizon (1 d) holds no prediction
    for basis in ("realised", "estimated"):
        assert sample("vigil_model_performance", {"model": "churn", "metric": "accuracy", "basis": basis}) is None
    assert sample("vigil_label_coverage_ratio", {"model": "churn"}) is None
    assert sample("vigil_label_delay_seconds", {"model": "churn"}) is None


def test_a_performance_section_removed_by_a_reload_leaves_no_figures_in_metrics(world: tuple,
                                                                                 tmp_path: Path) -> None:
    from monitor.reload import successor

    vigil, _, _ = world
    vigil.run_cycle("churn", T0)
    sample = vigil.metrics.registry.get_sample_value
    assert sample("vigil_model_performance", {"model": "churn", "metric": "accuracy", "basis": "realised"})
    plain = make_config(tmp_path, models=[model_config("churn", kpis=[], slos=[], samples={"path": "samples"})])
    new = successor(vigil, plain)  # the metrics carry over a reload
    new.run_cycle("churn", T0 + 60)
    for basis in ("realised", "estimated", "reference"):
        assert sample("vigil_model_performance", {"model": "churn", "metric": "accuracy", "basis": basis}) is None
    assert sample("vigil_label_coverage_ratio", {"model": "churn"}) is None


def test_a_label_dated_in_the_future_is_read_now_and_can_be_corrected(world: tuple) -> None:
    """A label is known by the time it is posted at the latest. Dated later (a local time
    sent as UTC, a mistyped year) it was accepted, left out of every window until that date,
    and a correction sent since, dated when it was sent, was ignored as older: the wrong
    label could never be replaced."""
    vigil, client, frame = world
    bad = frame[frame["timestamp"] >= T0 - 2 * H]
    typo = T0 + 365 * 86400  # 2028 for 2027
    wrong = [{**lb, "label": 1 - lb["label"]} for lb in _labels(bad.iloc[:1], typo)]
    assert _post(client, wrong + _labels(bad.iloc[1:], typo)).status_code == 202
    out = vigil.run_cycle("churn", T0 + 60)
    assert any(f.kind == "performance_drop" and f.evidence["basis"] == "realised" for f in out.findings)
    vigil.clock.set(T0 + 120)
    assert _post(client, _labels(bad.iloc[:1], T0 + 120)).status_code == 202
    [fixed] = [lb for lb in vigil.store.labels.between("churn", T0 - H, T0 + 180)
               if lb.prediction_id == bad["prediction_id"].iloc[0]]
    assert fixed.label == bad["_truth"].iloc[0] and fixed.ts == T0 + 120


def test_a_blind_cycle_is_said_by_the_api_not_hidden_behind_the_last_figures(tmp_path: Path) -> None:
    """/metrics drops its figures when the stage cannot read its inputs; the API went on
    serving the last good report, its windows and an empty note, as if it were this cycle's."""
    frame = _world(tmp_path)
    (tmp_path / "labels").mkdir()
    done = frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"])[["prediction_id", "label",
                                                                                     "timestamp"]]
    done.to_csv(tmp_path / "labels" / "day.csv", index=False)
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    vigil.run_cycle("churn", T0 + 1200)
    assert client.get("/v1/models/churn/performance", headers={"Authorization": f"Bearer {VIEWER}"}).json()["windows"]

    pd.DataFrame({"prediction_id": ["x"], "label": ["churned"], "timestamp": [T0]}).to_csv(
        tmp_path / "labels" / "broken.csv", index=False)
    out = vigil.run_cycle("churn", T0 + 1260)
    assert any(f.kind == "no_data" and f.entity == "performance" for f in out.findings)
    report = client.get("/v1/models/churn/performance", headers={"Authorization": f"Bearer {VIEWER}"}).json()
    assert report["at"] == T0 + 1260 and report["windows"] == [] and report["reference"] == {}
    assert "column 'label'" in report["note"] and "'churned'" in report["note"]


def test_a_store_that_fails_costs_the_figures_never_the_cycle(world: tuple) -> None:
    """The blind report is stored too: when the store is what failed, storing it must not
    raise out of the stage (the cycle goes on with a no-data finding)."""
    from monitor.types import Window

    vigil, _, _ = world

    def down(*_: Any, **__: Any) -> Any:
        raise OSError("database unreachable")

    vigil.store.labels.between = down
    vigil.store.labels.save_report = down
    m = vigil.config.model("churn")
    out = vigil.performance.run(m, T0 + 60, "1", Window(T0 + 60, T0 - 1800, T0 - 5400, T0 - 1800))
    assert [f.entity for f in out.findings] == ["performance"] and "database unreachable" in out.blind[0]


def test_a_store_failing_to_keep_the_report_costs_neither_the_cycle_nor_the_drop(world: tuple,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    """Writing the report of a cycle that read its inputs was outside the stage's guard: a
    store refusing that one write (locked, disk full, a PostgreSQL failover) raised out of the
    cycle, and the drop the labels showed was never alerted."""
    from sqlalchemy.exc import OperationalError

    vigil, client, frame = world
    assert _post(client, _labels(frame[frame["timestamp"] >= T0 - 2 * H], T0 + 30)).status_code == 202

    def dead(*_: Any) -> None:
        raise OperationalError("INSERT INTO performance_reports", {}, Exception("database is locked"))

    monkeypatch.setattr(vigil.store.labels, "save_report", dead)
    out = vigil.run_cycle("churn", T0 + 60)
    assert any(f.kind == "performance_drop" and f.evidence["basis"] == "realised" for f in out.findings)
    assert out.severity == "critical"
    monkeypatch.undo()  # the store is back: the report not kept is written by the next cycle
    vigil.run_cycle("churn", T0 + 120)
    assert vigil.store.labels.report("churn")["windows"][-1]["realised"]["accuracy"] < 0.8


def test_a_retried_future_dated_batch_never_undoes_the_correction_sent_since(world: tuple) -> None:
    """At-least-once delivery of a batch dated in the future: its retry, posted after the
    correction, was read as arriving then (later than the correction) and put the wrong
    label back."""
    vigil, client, frame = world
    one = frame[frame["timestamp"] >= T0 - H].iloc[:1]
    wrong = [{**lb, "label": 1 - lb["label"]} for lb in _labels(one, T0 + 365 * 86400)]
    vigil.clock.set(T0 + 60)
    assert _post(client, wrong).status_code == 202
    vigil.clock.set(T0 + 120)
    assert _post(client, _labels(one, T0 + 120)).status_code == 202  # the correction
    vigil.clock.set(T0 + 180)
    assert _post(client, wrong).status_code == 202  # the client's retry of the first batch
    [kept] = [lb for lb in vigil.store.labels.between("churn", T0, T0 + 240)
              if lb.prediction_id == one["prediction_id"].iloc[0]]
    assert kept.label == one["_truth"].iloc[0] and kept.ts == T0 + 120
