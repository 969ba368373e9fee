"""A model name may be 100 characters long (`models[].name`); every row keyed by it must
hold it on PostgreSQL as on SQLite. PostgreSQL enforces VARCHAR lengths (SQLite does not):
an incident's fingerprint `model:<name>` in VARCHAR(64) failed the cycle's transaction
for any name over 58 characters, so such a model never opened an incident there."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import (
    CTR_QUERY,
    P99_QUERY,
    T0,
    incident_prometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)

LONG = "recommendation-ranking-two-tower-retrieval-eu-west-1-production-" + "x" * 36  # 100 characters


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vigil.db'}"
    return fresh_schema_url(request.getfixturevalue("postgres_url"))


def test_a_model_with_a_100_character_name_opens_its_incident(tmp_path: Path, store_url: str) -> None:
    assert len(LONG) == 100
    m = model_config(LONG, kpis=[{"name": "ctr", "query": CTR_QUERY}],
                     slos=[{"name": "p99_latency", "query": P99_QUERY, "threshold": 0.5, "unit": "s"}])
    v = make_vigil(make_config(tmp_path, models=[m], store={"url": store_url}), prometheus=incident_prometheus(),
                   registry=serving_registry(model=LONG))
    reports = [v.run_cycle(LONG, T0 + i * 60) for i in range(3)]
    assert reports[-1].incident_id is not None and reports[-1].severity == "critical"
    (row,) = v.store.incidents(model=LONG)
    assert row.model == LONG and row.status == "open"
    v.store.close()
