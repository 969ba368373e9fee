"""Hostile samples posted to `POST /v1/samples` for a model whose performance is watched:
the columns performance reads are checked like numeric features, each bad one named."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from detectors.records import FindingKind
from monitor.api.app import create_app
from monitor.store.labels import Label
from tests.helpers_vigil import T0, make_config, make_vigil, model_config

INGEST = "ingest-token-4f1c9a7e"


@pytest.fixture
def client(tmp_path: Path) -> tuple[Any, TestClient]:
    performance = {"task": "classification", "prediction_column": "churn_pred", "probability_column": "churn_score",
                   "reference": {"start": T0 - 86400, "end": T0 - 3600}}
    m = model_config("churn", kpis=[], slos=[], features=["tenure"], samples={"path": "samples"},
                     performance=performance)
    tokens = [{"name": "feeder", "role": "ingest", "token_sha256": hashlib.sha256(INGEST.encode()).hexdigest()}]
    vigil = make_vigil(make_config(tmp_path, models=[m], api={"tokens": tokens}))
    return vigil, TestClient(create_app(vigil), raise_server_exceptions=False)


def _post(client: TestClient, records: list[dict[str, Any]]) -> Any:
    return client.post("/v1/samples", json={"model": "churn", "records": records},
                       headers={"Authorization": f"Bearer {INGEST}"})


@pytest.mark.parametrize(("record", "field", "words"), [
    ({"churn_pred": "yes", "churn_score": 0.9}, "records[1].churn_pred", "expected a number"),
    ({"churn_pred": 1, "churn_score": "0.93"}, "records[1].churn_score", "expected a number"),
    ({"churn_pred": 1, "churn_score": True}, "records[1].churn_score", "expected a number"),
    ({"churn_pred": 1, "churn_score": 4.2}, "records[1].churn_score", "expected a probability between 0 and 1"),
    # the probability logged as the prediction: every row read as class 0, accuracy silently wrong
    ({"churn_pred": 0.83, "churn_score": 0.83}, "records[1].churn_pred", "expected a class: 0 or 1"),
])
def test_a_bad_prediction_or_probability_refuses_the_batch_naming_the_field(
        client: tuple, record: dict, field: str, words: str) -> None:
    vigil, api = client
    good = {"timestamp": T0, "prediction_id": "a", "tenure": 3, "churn_pred": 0, "churn_score": 0.1}
    r = _post(api, [good, {**good, "prediction_id": "b", **record}])
    assert r.status_code == 422, r.text
    assert any(e["field"] == field and words in e["message"] for e in r.json()["fields"]), r.json()
    assert vigil.store.samples("churn", 0, 2 * T0) == []  # nothing of the batch stored
    assert _post(api, [good]).status_code == 202


def _predictions(tmp_path: Path, n: int, start: float, pred: list[Any], vigil: Any = None) -> None:
    """n logged predictions from `start`; with `vigil`, their labels (all 1) arrived too."""
    (tmp_path / "samples").mkdir(exist_ok=True)
    ids = [f"{start}-{i}" for i in range(n)]
    pd.DataFrame({"timestamp": start + np.arange(n) * 10.0, "prediction_id": ids,
                  "tenure": 3, "churn_pred": (pred * n)[:n], "churn_score": 0.9, "model_version": "1"}).to_csv(
        tmp_path / "samples" / f"{int(start)}.csv", index=False)
    if vigil is not None:
        vigil.store.labels.add("churn", [Label(i, 1.0, start + 3600) for i in ids], start + 3600)


def test_predictions_that_are_not_numbers_are_counted_not_dropped_unseen(client: tuple, tmp_path: Path) -> None:
    vigil, _ = client
    _predictions(tmp_path, 300, T0 - 86400 + 60, [1, 0], vigil)  # the reference period: fine
    _predictions(tmp_path, 300, T0 - 3000, [1, "churn", 0])  # the serving side now logs some as text
    vigil.run_cycle("churn", T0)
    note = vigil.store.labels.report("churn")["note"]
    assert "100 of 600 predictions left out" in note and "churn_pred" in note and "'churn'" in note, note


def test_predictions_all_text_name_the_column_not_missing_labels(client: tuple, tmp_path: Path) -> None:
    vigil, _ = client
    # The serving side logs its predictions as text; their labels arrived (the old message
    # said the reference "has 0 labelled predictions", sending the user after the labels).
    _predictions(tmp_path, 300, T0 - 86400 + 60, ["churn", "stay"], vigil)
    report = vigil.run_cycle("churn", T0)
    no_data = [f for f in report.findings if f.kind == FindingKind.NO_DATA and f.entity == "performance"]
    assert no_data and "churn_pred" in no_data[0].message and "'churn'" in no_data[0].message, \
        [f.message for f in report.findings]


def test_a_labelled_reference_file_saved_shuffled_keeps_each_label_with_its_prediction(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 1000
    ref = pd.DataFrame({"churn_pred": rng.integers(0, 2, n), "churn_score": rng.uniform(0, 1, n)})
    ref["label"] = ref["churn_pred"]  # the model was right every time: reference accuracy 1.0
    # Saved as pandas leaves a shuffled (or split) frame: its own index goes into the file.
    ref.sample(frac=1.0, random_state=1).to_parquet(tmp_path / "reference.parquet")
    performance = {"task": "classification", "prediction_column": "churn_pred", "probability_column": "churn_score",
                   "reference": {"path": "reference.parquet"}, "estimate": False}
    m = model_config("churn", kpis=[], slos=[], samples={"path": "samples"}, performance=performance)
    vigil = make_vigil(make_config(tmp_path, models=[m]))
    _predictions(tmp_path, 300, T0 - 3000, [1, 0])
    vigil.run_cycle("churn", T0)
    assert vigil.store.labels.report("churn")["reference"]["accuracy"] == 1.0


def test_integer_ids_in_a_csv_with_a_gap_still_join_their_labels(client: tuple, tmp_path: Path) -> None:
    vigil, _ = client
    _predictions(tmp_path, 300, T0 - 86400 + 60, [1, 0], vigil)  # the reference period
    n = 300
    ids: list[Any] = list(range(10_000, 10_000 + n))
    ids[7] = None  # one row logged without an id: pandas reads the column as floats (10000.0)
    pd.DataFrame({"timestamp": T0 - 3000 + np.arange(n) * 10.0, "prediction_id": ids, "tenure": 3,
                  "churn_pred": 1, "churn_score": 0.9, "model_version": "1"}).to_csv(
        tmp_path / "samples" / "ints.csv", index=False)
    vigil.store.labels.add("churn", [Label(str(i), 1.0, T0 - 60) for i in ids if i is not None], T0 - 60)
    vigil.run_cycle("churn", T0)
    last = vigil.store.labels.report("churn")["windows"][-1]
    assert (last["predictions"], last["labelled"]) == (n - 1, n - 1), last


def test_probabilities_logged_as_percentages_are_counted_not_estimated_from(client: tuple, tmp_path: Path) -> None:
    vigil, _ = client
    _predictions(tmp_path, 300, T0 - 86400 + 60, [1, 0], vigil)  # the reference period: probabilities 0.9
    n = 300
    pd.DataFrame({"timestamp": T0 - 3000 + np.arange(n) * 10.0, "prediction_id": [f"pct-{i}" for i in range(n)],
                  "tenure": 3, "churn_pred": 1, "churn_score": 87.5, "model_version": "1"}).to_csv(
        tmp_path / "samples" / "pct.csv", index=False)
    vigil.run_cycle("churn", T0)
    report = vigil.store.labels.report("churn")
    assert "300 of 600 probabilities in 'churn_score' left out" in report["note"], report["note"]
    estimated = report["windows"][-1]["estimated"]
    assert estimated is None or all(v is None or 0 <= v <= 1 for v in estimated.values()), estimated


def test_an_infinite_prediction_is_counted_not_fatal_to_every_window(client: tuple, tmp_path: Path) -> None:
    vigil, _ = client
    _predictions(tmp_path, 300, T0 - 86400 + 60, [1, 0], vigil)
    _predictions(tmp_path, 300, T0 - 3000, [1, 0, float("inf")], vigil)  # an overflowed output, labelled
    report = vigil.run_cycle("churn", T0)
    assert not [f for f in report.findings if f.entity == "performance"], [f.message for f in report.findings]
    note = vigil.store.labels.report("churn")["note"]
    assert "100 of 600 predictions left out" in note and "inf" in note, note


def test_an_infinite_label_in_a_label_file_is_named() -> None:
    from monitor.sources.labels import label_values
    from monitor.sources.samples import SampleFileError

    # Before: inf passed as a label; a classifier read it as class 0, a regression failed
    # every window with "labels and predictions must be finite", naming no file or column.
    with pytest.raises(SampleFileError, match=r"labels/day.csv column 'label'.*\binf\b"):
        label_values(pd.Series([1.0, float("inf"), 0.0]), where="labels/day.csv column 'label'")


def test_64_bit_ids_in_a_csv_with_a_gap_keep_every_digit(client: tuple, tmp_path: Path) -> None:
    """Snowflake-style ids (~1.8e18) in a CSV with one row missing its id: pandas read the
    column as floats, which hold 15-16 digits, so neighbouring ids collapsed into one value
    and labels joined the wrong predictions (or none)."""
    vigil, _ = client
    _predictions(tmp_path, 300, T0 - 86400 + 60, [1, 0], vigil)  # the reference period
    n = 300
    ids: list[Any] = [1_795_000_000_000_000_001 + i for i in range(n)]
    ids[7] = None
    pd.DataFrame({"timestamp": T0 - 3000 + np.arange(n) * 10.0, "prediction_id": pd.Series(ids, dtype=object),
                  "tenure": 3, "churn_pred": 1, "churn_score": 0.9, "model_version": "1"}).to_csv(
        tmp_path / "samples" / "snowflake.csv", index=False)  # every digit in the file, one cell empty
    assert "1795000000000000300" in (tmp_path / "samples" / "snowflake.csv").read_text()
    vigil.store.labels.add("churn", [Label(str(i), 1.0, T0 - 60) for i in ids if i is not None], T0 - 60)
    vigil.run_cycle("churn", T0)
    last = vigil.store.labels.report("churn")["windows"][-1]
    assert (last["predictions"], last["labelled"]) == (n - 1, n - 1), last


def test_a_prediction_declared_a_categorical_feature_takes_its_class_names(tmp_path: Path) -> None:
    """`prediction_column: label` listed among the features as categorical (class names):
    drift judges it as a category, so the API must take "cat" for it, not refuse every batch."""
    m = model_config("pets", kpis=[], slos=[], features=[{"name": "label", "type": "categorical"}],
                     prediction_column="label", samples={"path": "samples"})
    tokens = [{"name": "feeder", "role": "ingest", "token_sha256": hashlib.sha256(INGEST.encode()).hexdigest()}]
    vigil = make_vigil(make_config(tmp_path, models=[m], api={"tokens": tokens}))
    api = TestClient(create_app(vigil), raise_server_exceptions=False)
    r = api.post("/v1/samples", json={"model": "pets", "records": [{"timestamp": T0, "label": "cat"}]},
                 headers={"Authorization": f"Bearer {INGEST}"})
    assert r.status_code == 202, r.text


def test_a_misspelt_feature_column_is_refused_naming_the_feature_it_stands_for(tmp_path, monkeypatch):
    """`user_agee` for the configured `user_age`: accepted, the feature read as missing from
    production for as long as the client kept the typo, and nothing said why."""
    from tests.helpers_vigil import MODEL
    from tests.unit.monitor.test_api import samples_api

    api = samples_api(tmp_path, monkeypatch)
    typo = [{"timestamp": "2027-01-15T07:59:00Z", "user_agee": 31, "device": "ios", "score": 0.4, "request_id": "r1"}]
    r = api.post("/v1/samples", {"model": MODEL, "records": typo})
    assert r.status_code == 422, r.text
    [e] = r.json()["fields"]
    assert e["field"] == "records[0].user_agee" and "did you mean 'user_age'" in e["message"], e
    fine = [{**typo[0], "user_age": 31}]  # the feature is there: an extra column is anyone's business
    assert api.post("/v1/samples", {"model": MODEL, "records": fine}).status_code == 202


def test_a_sample_dated_years_ahead_is_refused_naming_its_timestamp(tmp_path, monkeypatch):
    """A client clock set to 2100 (or a year typed wrong): the row was stored, read by no
    window until then, and never purged by retention, which deletes what is old."""
    from tests.helpers_vigil import MODEL
    from tests.unit.monitor.test_api import samples_api

    api = samples_api(tmp_path, monkeypatch)
    far = [{"timestamp": "2100-01-15T08:00:00Z", "user_age": 31, "device": "ios", "score": 0.4}]
    r = api.post("/v1/samples", {"model": MODEL, "records": far})
    assert r.status_code == 422, r.text
    [e] = r.json()["fields"]
    assert e["field"] == "records[0].timestamp" and "at most a year from now" in e["message"], e


def test_a_configured_performance_column_is_never_called_a_misspelt_feature(tmp_path: Path) -> None:
    """`prediction_id` is performance's id column (its default): a batch whose client drops
    null fields (no `prediction` key) was refused whole, the id column named "unknown"."""
    performance = {"task": "classification", "reference": {"start": T0 - 86400, "end": T0 - 3600}}
    m = model_config("churn", kpis=[], slos=[], features=["tenure"], samples={"path": "samples"},
                     prediction_column="prediction", performance=performance)
    tokens = [{"name": "feeder", "role": "ingest", "token_sha256": hashlib.sha256(INGEST.encode()).hexdigest()}]
    api = TestClient(create_app(make_vigil(make_config(tmp_path, models=[m], api={"tokens": tokens}))),
                     raise_server_exceptions=False)
    records = [{"timestamp": T0, "tenure": 3.0, "prediction_id": "p-1"}]  # the prediction null, so left out
    r = _post(api, records)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
