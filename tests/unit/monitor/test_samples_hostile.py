"""Hostile samples posted to `POST /v1/samples` for a model whose performance is watched:
the columns performance reads are checked like numeric features, each bad one named."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
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
