"""POST /v1/samples: a naive RFC 3339 time is UTC (README, OpenAPI) whatever the records
before it say, and epoch numbers in seconds, milliseconds, microseconds or nanoseconds all
land at the right time."""
from __future__ import annotations

from tests.helpers_vigil import MODEL, T0  # T0 = 2027-01-15T08:00:00Z
from tests.unit.monitor.test_api import samples_api


def test_a_naive_timestamp_is_utc_even_after_a_record_with_an_offset(tmp_path, monkeypatch):
    api = samples_api(tmp_path, monkeypatch)
    records = [{"timestamp": "2027-01-15T03:00:00-05:00", "user_age": 31, "device": "ios", "score": 0.4},  # 08:00Z
               {"timestamp": "2027-01-15T08:00:00", "user_age": 40, "device": "web", "score": 0.7}]      # naive: 08:00Z
    r = api.post("/v1/samples", {"model": MODEL, "records": records})
    assert r.status_code == 202
    stored = api.vigil.store.samples(MODEL, 0, T0 + 86400)
    got = [ts - T0 for ts, _ in stored]
    assert got == [0.0, 0.0], f"seconds from 08:00Z as stored: {got}"  # the naive one lands 5 h in the future


def test_the_same_naive_timestamp_alone_is_utc(tmp_path, monkeypatch):
    api = samples_api(tmp_path, monkeypatch)
    r = api.post("/v1/samples", {"model": MODEL, "records": [
        {"timestamp": "2027-01-15T08:00:00", "user_age": 40, "device": "web", "score": 0.7}]})
    assert r.status_code == 202
    assert [ts for ts, _ in api.vigil.store.samples(MODEL, 0, T0 + 86400)] == [T0]


def test_epoch_microseconds_are_not_silently_stored_in_1970(tmp_path, monkeypatch):
    # Epoch microseconds (what Spark/BigQuery/Kafka-Connect often emit) are neither seconds,
    # ms nor ns: they should be read as microseconds or refused with a 422, not accepted as
    # 1970-01-21 and never seen by any window.
    api = samples_api(tmp_path, monkeypatch)
    r = api.post("/v1/samples", {"model": MODEL, "records": [
        {"timestamp": int(T0 * 1_000_000), "user_age": 40, "device": "web", "score": 0.7}]})
    stored = api.vigil.store.samples(MODEL, 0, T0 + 86400)
    assert r.status_code == 422 or [ts for ts, _ in stored] == [T0], (r.status_code, stored)
