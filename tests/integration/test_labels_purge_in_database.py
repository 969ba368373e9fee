"""The hourly labels purge keeps a label while its prediction is one of the reference
period's (monitor/store/retention_labels.py). It read every reference prediction id into
the process to decide: hundreds of MB for a reference of a million predictions. It now
decides in the database, with the same result on SQLite and PostgreSQL, whatever type
the ids were written with (123, 123.0 and "123" are one id, as the performance stage
joins them: monitor/sources/labels.id_strings)."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from monitor.config import ModelConfig
from monitor.sources.labels import id_strings
from monitor.store.labels import Label, LabelRow
from monitor.store.repository import Store
from monitor.store.retention_labels import purge_labels
from tests.helpers_replicas import fresh_schema_url

DAY = 86400.0
NOW = 100 * DAY
P0 = NOW - 40 * DAY  # the reference day, long past the 14 days of retention
MODEL = ModelConfig.model_validate({"name": "churn", "performance": {
    "task": "classification", "prediction_column": "p", "reference": {"start": P0, "end": P0 + DAY}}})
# The ids the reference's samples were written with: each type json can hold.
SAMPLE_IDS: list[object] = [123, 124.0, "125", 1.5, 2.5e-07, 1e20, 10**20, -7, -0.0, True, "x y", "9.0", 2**63 - 1]


def _store(url: str) -> Store:
    st = Store(url)
    st.add_samples("churn", [(P0 + i, {"prediction_id": v, "p": 1}) for i, v in enumerate(SAMPLE_IDS)])
    st.add_samples("churn", [(P0 + 100, {"p": 1})])  # a sample without an id
    st.add_samples("churn", [(P0 - 1, {"prediction_id": "before", "p": 1}), (P0 + 2 * DAY, {"prediction_id": "after"})])
    return st


def _label_texts() -> list[str]:
    joined = list(id_strings(pd.Series(SAMPLE_IDS, dtype=object)))
    return joined + ["123.0", "125.0", "1.5e-07", "true", "before", "after", "nobody", "9"]


def _purged(url: str, dry_run: bool = False) -> tuple[int, set[str]]:
    st = _store(url)
    old, late = NOW - 30 * DAY, P0 - DAY  # labels posted late (a backfill) and one true before the reference
    st.labels.add("churn", [Label(t, 1.0, old) for t in _label_texts()] + [Label("early", 1.0, late)], NOW)
    st.labels.add("churn", [Label("fresh", 1.0, NOW - 60)], NOW)
    n = purge_labels(st, [MODEL], NOW, 14 * DAY, 100, dry_run)
    with st.tx() as s:
        kept = set(s.scalars(select(LabelRow.prediction_id)))
    st.close()
    return n, kept


def _expected() -> set[str]:
    return set(id_strings(pd.Series(SAMPLE_IDS, dtype=object))) | {"fresh"}


def test_the_purge_keeps_exactly_the_reference_labels_on_sqlite(tmp_path: Path) -> None:
    n, kept = _purged(f"sqlite:///{tmp_path / 'v.db'}")
    assert kept == _expected()
    assert n == len(_label_texts()) + 1 + 1 - len(kept)
    assert _purged(f"sqlite:///{tmp_path / 'd.db'}", dry_run=True)[0] == n


def test_the_purge_keeps_exactly_the_reference_labels_on_postgres(postgres_url: str) -> None:
    n, kept = _purged(fresh_schema_url(postgres_url))
    assert kept == _expected()
    assert _purged(fresh_schema_url(postgres_url), dry_run=True)[0] == n


def test_the_purge_does_not_hold_the_reference_ids_in_memory(tmp_path: Path) -> None:
    st = Store(f"sqlite:///{tmp_path / 'big.db'}")
    n = 60_000
    st.add_samples("churn", [(P0 + i % 80_000, {"prediction_id": f"id-{i}", "p": 1}) for i in range(n)])
    st.labels.add("churn", [Label(f"id-{i}" if i % 2 else f"gone-{i}", 1.0, NOW - 30 * DAY) for i in range(2000)], NOW)
    tracemalloc.start()
    try:
        purged = purge_labels(st, [MODEL], NOW, 14 * DAY, 500, False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert purged == 1000
    # The reference's 60,000 ids as a set (and the column they were read into) took several
    # MB here; hundreds for a reference of millions. Now only a page of label ids is held.
    assert peak < 2_000_000, f"{peak / 1e6:.1f} MB"


@pytest.mark.parametrize("samples_in_files", [True])
def test_labels_of_a_model_whose_predictions_are_in_files_stay_from_the_reference_start(
        tmp_path: Path, samples_in_files: bool) -> None:
    st = Store(f"sqlite:///{tmp_path / 'f.db'}")
    m = ModelConfig.model_validate({**MODEL.model_dump(exclude_unset=True), "samples": {"path": str(tmp_path)}})
    st.labels.add("churn", [Label("a", 1.0, P0 - DAY), Label("b", 1.0, NOW - 30 * DAY)], NOW)
    assert purge_labels(st, [m], NOW, 14 * DAY, 100, False) == 1
    with st.tx() as s:
        assert set(s.scalars(select(LabelRow.prediction_id))) == {"b"}
