"""A move of the alias read after the registry was unreachable for longer than the onset's
slack is dated by what a real MLflow registry holds (the version's `creation_timestamp`,
in milliseconds), not when it is read; one whose version was registered after the open
incident opened is a person's answer to it (tests/unit/monitor/test_deploy_outage_dating.py
runs the same through whole cycles against the in-memory stand-in)."""
from __future__ import annotations

import time
from typing import Any

from alerts.lifecycle import IncidentStatus
from monitor.sources.errors import SourceUnavailable
from monitor.sources.registry import RegistrySource
from monitor.store.repository import IncidentRow
from tests.helpers_vigil import make_config, make_vigil, model_config


class Outage:
    """The real registry, or a dead one (every call: connection refused)."""

    def __init__(self, inner: RegistrySource) -> None:
        self.inner, self.down = inner, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not self.down or not callable(attr):
            return attr

        def dead(*_a: Any, **_k: Any) -> Any:
            raise SourceUnavailable("mlflow", self.inner.url, "connection refused")
        return dead


def _setup(tmp_path: Any, sqlite_registry: RegistrySource, name: str) -> tuple[Any, Outage, Any]:
    reg = Outage(sqlite_registry)
    sqlite_registry.create_model(name)
    v1 = sqlite_registry.create_version(name, f"vigil-replay:/{name}/1")
    sqlite_registry.set_alias(name, "champion", v1.version)
    vigil = make_vigil(make_config(tmp_path, models=[model_config(name)]), registry=reg)
    return vigil, reg, vigil.config.model(name)


def test_a_deploy_made_during_a_long_outage_is_dated_by_mlflows_registration(tmp_path, sqlite_registry,
                                                                              model_name) -> None:
    vigil, reg, m = _setup(tmp_path, sqlite_registry, model_name)
    now = time.time()
    vigil.deploys.poll(m, now - 1200)  # first read: v1
    reg.down = True
    vigil.deploys.poll(m, now - 600)  # MLflow stops answering
    v2 = sqlite_registry.create_version(model_name, f"vigil-replay:/{model_name}/2")  # CI registers v2 ...
    sqlite_registry.set_alias(model_name, "champion", v2.version)  # ... and sets it
    reg.down = False
    _, [event] = vigil.deploys.poll(m, now + 900)  # read 15 minutes later
    registered = sqlite_registry.get_version(model_name, v2.version).created_at
    assert abs(registered - now) < 60  # MLflow's creation_timestamp (ms) read as seconds
    assert (event.version, event.previous_version, event.at, event.source) == \
        (v2.version, "1", registered, "registry")


def test_a_version_registered_after_the_incident_opened_and_set_while_unread_answers_it(
        tmp_path, sqlite_registry, model_name) -> None:
    vigil, reg, m = _setup(tmp_path, sqlite_registry, model_name)
    now = time.time()
    vigil.deploys.poll(m, now - 1200)
    reg.down = True
    vigil.deploys.poll(m, now - 600)
    with vigil.store.tx() as s:  # the incident opened while MLflow did not answer
        s.add(IncidentRow(model=model_name, status=IncidentStatus.OPEN, severity="critical", title="t",
                          onset=now - 420, opened_at=now - 360, updated_at=now - 360, fingerprint="f"))
    v2 = sqlite_registry.create_version(model_name, f"vigil-replay:/{model_name}/2")  # the fix, after it
    sqlite_registry.set_alias(model_name, "champion", v2.version)
    reg.down = False
    _, [event] = vigil.deploys.poll(m, now + 900)
    assert (event.version, event.source) == (v2.version, "response")
