"""Delayed labels in the store (monitor/store/labels.py) on SQLite and PostgreSQL alike:
a label sent again for the same prediction replaces the first, also when both are in
one batch (a correction sent with the label it corrects)."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.store.labels import Label
from monitor.store.repository import Store
from tests.helpers_replicas import fresh_schema_url

T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = (f"sqlite:///{tmp_path / 'vigil.db'}" if request.param == "sqlite"
           else fresh_schema_url(request.getfixturevalue("postgres_url")))
    s = Store(url)
    request.addfinalizer(s.close)
    return s


def test_a_batch_correcting_its_own_label_keeps_the_last_one(store: Store) -> None:
    batch = [Label("p-1", 0.0, T0), Label("p-2", 1.0, T0 + 1), Label("p-1", 1.0, T0 + 2)]
    assert store.labels.add("churn", batch, T0 + 10) == 3
    got = sorted(store.labels.between("churn", T0 - 1, T0 + 5), key=lambda lb: lb.prediction_id)
    assert got == [Label("p-1", 1.0, T0 + 2), Label("p-2", 1.0, T0 + 1)]
    assert store.labels.count("churn") == 2


def test_a_retried_batch_never_undoes_a_correction_sent_since(store: Store) -> None:
    # At-least-once delivery: the first batch timed out at the client, was stored anyway, a
    # correction followed, and then the client's retry of the first batch arrived.
    first = [Label("p-1", 0.0, T0), Label("p-2", 1.0, T0)]
    store.labels.add("churn", first, T0 + 10)
    store.labels.add("churn", [Label("p-1", 1.0, T0 + 3600)], T0 + 3700)
    store.labels.add("churn", first, T0 + 3800)
    got = sorted(store.labels.between("churn", T0 - 1, T0 + 7200), key=lambda lb: lb.prediction_id)
    assert got == [Label("p-1", 1.0, T0 + 3600), Label("p-2", 1.0, T0)]


def test_within_a_batch_the_label_known_last_wins_whatever_its_place(store: Store) -> None:
    batch = [Label("p-1", 1.0, T0 + 60), Label("p-1", 0.0, T0)]  # the correction first, then the original
    store.labels.add("churn", batch, T0 + 100)
    assert store.labels.between("churn", T0 - 1, T0 + 100) == [Label("p-1", 1.0, T0 + 60)]
