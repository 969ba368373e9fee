"""A version's `vigil.reference_path` tag added while the daemon runs is seen.

Each cycle of a model without a training reference says "no training reference: set
reference.path or tag version 2 with vigil.reference_path". A person did just that with
MLflow's client while the daemon ran, and the daemon went on saying it until a restart:
the version had been read once, without the tag, and kept for good."""
from __future__ import annotations

import time

import pytest

import monitor.sources.registry.source as registry_source
from monitor.config import MlflowConfig
from monitor.replay.local_mlflow import sqlite_tracking_uri
from monitor.replay.registry_bundle import RegistryEvent, RegistryTimeline
from monitor.sources.registry import RegistrySource
from monitor.sources.registry.versions import REFERENCE_TAG

pytestmark = pytest.mark.integration


def test_a_reference_tag_added_after_the_version_was_read_is_seen_within_a_minute(tmp_path, monkeypatch):
    uri = sqlite_tracking_uri(tmp_path / "mlflow.db")
    now = time.time()
    events = [RegistryEvent("model", "recommender", now - 3600),
              RegistryEvent("version", "recommender", now - 1800, version="1"),
              RegistryEvent("alias", "recommender", now - 1800, version="1", alias="champion")]
    clock = [1000.0]
    monkeypatch.setattr(registry_source.time, "monotonic", lambda: clock[0])
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as daemon, \
            RegistrySource(MlflowConfig(tracking_uri=uri)) as person:
        RegistryTimeline(events, person).apply_until(now)
        assert daemon.reference_path("recommender", "1") is None  # not tagged yet
        person.set_version_tag("recommender", "1", REFERENCE_TAG, "/data/recsys/train.parquet")
        clock[0] += 61
        assert daemon.reference_path("recommender", "1") == "/data/recsys/train.parquet"
        # A tagged version is still read once and kept: the cycle asks every time.
        person.set_version_tag("recommender", "1", REFERENCE_TAG, "/data/recsys/other.parquet")
        clock[0] += 3600
        assert daemon.reference_path("recommender", "1") == "/data/recsys/train.parquet"
