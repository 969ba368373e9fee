"""`Idempotency-Key` on `POST /v1/samples`: a serving side whose client timed out after the
batch was stored sends it again; without a key the batch is stored twice and weighs double
in the drift window, with one it is answered as the first time and stored once."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from monitor.api.app import create_app
from monitor.config_retention import RetentionConfig
from monitor.store import idempotency
from monitor.store.retention import purge
from monitor.store.tables import IdempotencyRow
from tests.helpers_vigil import T0, make_config, make_vigil, model_config

INGEST = "ingest-token-7d2e01bc"
BATCH = [{"timestamp": T0 - 60, "tenure": 3}, {"timestamp": T0, "tenure": 5}]


@pytest.fixture
def client(tmp_path: Path) -> tuple[Any, TestClient]:
    m = model_config("churn", kpis=[], slos=[], features=["tenure"], samples={"path": "samples"})
    tokens = [{"name": "feeder", "role": "ingest", "token_sha256": hashlib.sha256(INGEST.encode()).hexdigest()}]
    vigil = make_vigil(make_config(tmp_path, models=[m], api={"tokens": tokens}))
    return vigil, TestClient(create_app(vigil), raise_server_exceptions=False)


def _post(api: TestClient, records: list[dict[str, Any]], key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {INGEST}", **({"Idempotency-Key": key} if key is not None else {})}
    return api.post("/v1/samples", json={"model": "churn", "records": records}, headers=headers)


def _stored(vigil: Any) -> list[float]:
    return [ts for ts, _ in vigil.store.samples("churn", 0, 2 * T0)]


def test_a_batch_retried_with_its_key_is_stored_once_and_answered_as_the_first_time(client) -> None:
    vigil, api = client
    first = _post(api, BATCH, key="batch-0001")
    retry = _post(api, BATCH, key="batch-0001")
    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json() == {"accepted": 2, "model": "churn"}
    assert retry.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    assert _stored(vigil) == [T0 - 60, T0]
    assert _post(api, BATCH, key="batch-0002").status_code == 202  # another batch, the same rows: stored
    assert _stored(vigil) == [T0 - 60, T0 - 60, T0, T0]


def test_without_a_key_a_retry_is_a_new_batch(client) -> None:
    vigil, api = client
    assert _post(api, BATCH).status_code == _post(api, BATCH).status_code == 202
    assert len(_stored(vigil)) == 4


def test_a_key_sent_again_with_another_batch_is_refused_and_stores_nothing(client) -> None:
    vigil, api = client
    assert _post(api, BATCH, key="batch-0001").status_code == 202
    r = _post(api, [{"timestamp": T0 + 60, "tenure": 9}], key="batch-0001")
    assert r.status_code == 422 and "different request body" in r.text, r.text
    assert _stored(vigil) == [T0 - 60, T0]


def test_a_refused_batch_leaves_its_key_free_for_the_corrected_one(client) -> None:
    vigil, api = client
    bad = [{"timestamp": T0, "tenure": "three"}]
    r = _post(api, bad, key="batch-0001")
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "records[0].tenure"
    assert _post(api, BATCH, key="batch-0001").status_code == 202
    assert _stored(vigil) == [T0 - 60, T0]


def test_an_empty_key_is_refused_naming_the_header(client) -> None:
    vigil, api = client
    r = _post(api, BATCH, key=" ")
    assert r.status_code == 422 and "idempotency-key" in r.text.lower(), r.text
    assert _stored(vigil) == []


def test_the_key_and_the_rows_are_one_transaction_the_second_writer_stores_nothing(client) -> None:
    """Two requests with one key at once: the one whose key write fails stores none of its rows."""
    vigil, _ = client
    store = vigil.store

    def keep(at: float):
        return lambda s: idempotency.put_response(s, "samples:churn", "k", "h", 202, {"accepted": 1}, at,
                                                  replace_before=at - idempotency.IDEMPOTENCY_TTL_S)
    store.add_samples("churn", [(T0, {"tenure": 1})], keep(1000.0))
    with pytest.raises(Exception, match="(?i)unique|integrity"):
        store.add_samples("churn", [(T0 + 1, {"tenure": 2})], keep(1001.0))
    assert _stored(vigil) == [T0]


def test_the_purge_drops_answers_that_no_longer_answer_a_retry(client) -> None:
    vigil, api = client
    assert _post(api, BATCH, key="old").status_code == 202
    assert _post(api, BATCH, key="new").status_code == 202
    with vigil.store.tx() as s:
        s.get(IdempotencyRow, ("old", "samples:churn")).created_at -= idempotency.IDEMPOTENCY_TTL_S + 60
    now = vigil.store.idempotent_response("samples:churn", "new").created_at
    assert purge(vigil.store, RetentionConfig(), now, dry_run=True).idempotency_keys == 1
    assert purge(vigil.store, RetentionConfig(batch_rows=100), now).idempotency_keys == 1
    with vigil.store.tx() as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRow)) == 1
    assert _post(api, BATCH, key="old").status_code == 202  # expired: a new batch under it
    assert len(_stored(vigil)) == 6
