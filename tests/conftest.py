"""Shared test set-up.

In CI (CI=true) a missing Prometheus binary is an error, not a skip: the integration
tests against the real server are the point, and `make test` installs it.
"""
from __future__ import annotations

import os
import shutil

import pytest

# Shared fixtures: real servers (Prometheus, MLflow, PostgreSQL), started once per module
# that asks for them.
pytest_plugins = ["tests.fixtures_prometheus", "tests.fixtures_mlflow", "tests.fixtures_postgres"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") and not (shutil.which("prometheus") and shutil.which("promtool")):
        raise pytest.UsageError("CI: prometheus/promtool not installed; `make test` installs them with apt-get")
