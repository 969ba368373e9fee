"""The local Kubernetes API and a client pointed at it, per test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.executors.kube import KubeClient, api_client_at
from tests.fakes.kube_api import FakeKubeApi


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as server:
        yield server


@pytest.fixture
def kube_client(kube: FakeKubeApi) -> KubeClient:
    return KubeClient(api_client_at(kube.url), timeout_s=2.0, max_attempts=3,
                      backoff_s=0.01)
