"""Builders for a whole `Vigil` on a temp SQLite store, for the API, outbox and daemon tests.

Prometheus and the MLflow registry are replaced by small in-memory stand-ins where a real
server is not the point of the test (the real clients are covered by
test_prometheus_source.py and test_registry_source.py). The stand-ins follow the same
contract as the real clients: `query_range` returns `Series` or raises
`SourceUnavailable`; the registry returns `None` for an unknown alias, raises
`ModelNotFound` for an unknown version and `SourceUnavailable` when "down".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alerts.outbox import Notifier
from detectors.records import Series
from monitor.clock import ReplayClock
from monitor.config import VigilConfig, parse_config
from monitor.sources.errors import SourceState, SourceStatus, SourceUnavailable
from monitor.sources.registry import ModelNotFound, ModelVersionInfo
from monitor.store.repository import Store
from monitor.vigil import Vigil

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z: the first cycle of a scenario
MODEL = "recommender"
OWNER = "#recsys-alerts"
ONCALL = "#ml-oncall"
CTR_QUERY = 'sum(rate(clicks_total{model="recommender"}[5m])) / sum(rate(impressions_total{model="recommender"}[5m]))'
P99_QUERY = 'histogram_quantile(0.99, sum by (le) (rate(latency_seconds_bucket{service="recsys-api"}[5m])))'

Curve = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- config
def model_config(name: str = MODEL, **over: Any) -> dict[str, Any]:
    """One monitored model with a CTR KPI and a p99 latency SLO (raw YAML-shaped dict)."""
    m: dict[str, Any] = {
        "name": name,
        "alias": "champion",
        "owner_channel": OWNER,
        "oncall_channel": ONCALL,
        "kpis": [{"name": "ctr", "query": CTR_QUERY if name == MODEL else f"ctr_of{{model=\"{name}\"}}"}],
        "slos": [{"name": "p99_latency", "query": P99_QUERY if name == MODEL else f"p99_of{{model=\"{name}\"}}",
                  "threshold": 0.5, "unit": "s"}],
    }
    m.update(over)
    return m


def make_config(tmp_path: Path, *, models: list[dict[str, Any]] | None = None, **sections: Any) -> VigilConfig:
    """A validated config whose store and sink live in `tmp_path`; `sections` override top-level keys."""
    data: dict[str, Any] = {
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
        "slack": {"sink_path": "notifications.jsonl"},
        "spool": {"directory": "spool"},  # the test's own, not the machine's shared one
        "schedule": {"interval": "60s", "lookback": "30m", "baseline": "1h"},
        "policy": {"slo_consecutive_cycles": 2, "resolve_after_cycles": 2},
        "sources": {"prometheus": {"url": "http://127.0.0.1:9", "step": "60s"},
                    "mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
        "models": models or [model_config()],
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data, "test config", str(tmp_path))


# --------------------------------------------------------------------------- stand-ins
class StubPrometheus:
    """PromQL by exact query text -> a curve evaluated on the step grid of the request."""

    def __init__(self, curves: dict[str, Curve] | None = None, *, step: float = 60.0) -> None:
        self.curves = dict(curves or {})
        self.step = step
        self.down = False
        self.calls: list[tuple[str, float, float]] = []

    def ready(self) -> SourceState:
        status = SourceStatus.DOWN if self.down else SourceStatus.UP
        return SourceState("prometheus", status, "http://127.0.0.1:9", "connection refused" if self.down else "")

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        self.calls.append((query, start, end))
        if self.down:
            raise SourceUnavailable("prometheus", "http://127.0.0.1:9", "connection refused")
        curve = self.curves.get(query)
        if curve is None:
            return []
        step = step or self.step
        ts = np.arange(np.ceil(start / step) * step, end + 1e-9, step)
        return [Series(name or query, {}, ts, np.asarray(curve(ts), dtype=float))]


def step_curve(normal: float, bad: float, bad_from: float, bad_until: float = float("inf")) -> Curve:
    """`normal`, except `bad` on [bad_from, bad_until)."""
    return lambda ts: np.where((ts >= bad_from) & (ts < bad_until), bad, normal)


@dataclass
class MemoryRegistry:
    """The registry calls Vigil makes (alias read/move, version info, tags), in memory."""

    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    versions: dict[tuple[str, str], ModelVersionInfo] = field(default_factory=dict)
    down: bool = False
    fail_set_alias: str | None = None  # an error message: set_alias raises SourceUnavailable with it
    broken_models: set[str] = field(default_factory=set)  # alias reads raise an unexpected error
    moves: list[tuple[str, str, str]] = field(default_factory=list)

    def add_version(self, name: str, version: str, *, created_at: float, tags: dict[str, str] | None = None) -> None:
        self.versions[(name, version)] = ModelVersionInfo(name, version, created_at, dict(tags or {}),
                                                          f"models:/{name}/{version}", None, "READY")

    def _check(self) -> None:
        if self.down:
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "connection refused")

    def ready(self) -> SourceState:
        status = SourceStatus.DOWN if self.down else SourceStatus.UP
        return SourceState("mlflow", status, "http://127.0.0.1:9", "connection refused" if self.down else "")

    def alias_version(self, name: str, alias: str) -> str | None:
        self._check()
        if name in self.broken_models:
            raise RuntimeError(f"registry client bug while reading {name}")
        return self.aliases.get((name, alias))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._check()
        if self.fail_set_alias:
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", self.fail_set_alias)
        if (name, version) not in self.versions:
            raise ModelNotFound(name, version)
        self.aliases[(name, alias)] = version
        self.moves.append((name, alias, version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._check()
        self.aliases.pop((name, alias), None)
        self.moves.append((name, alias, ""))

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        self._check()
        try:
            return self.versions[(name, version)]
        except KeyError:
            raise ModelNotFound(name, version) from None

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        self._check()
        return sorted((v for (n, _), v in self.versions.items() if n == name), key=lambda v: int(v.version))

    def get_version_cached(self, name: str, version: str) -> ModelVersionInfo:
        return self.get_version(name, version)  # as RegistrySource's, without the cache: tests change versions

    def reference_path(self, name: str, version: str, tag: str = "vigil.reference_path") -> str | None:
        return self.get_version(name, version).tags.get(tag) or None

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        info = self.get_version(name, version)
        self.versions[(name, version)] = ModelVersionInfo(info.name, info.version, info.created_at,
                                                          {**info.tags, key: value}, info.source, info.run_id,
                                                          info.status)


def serving_registry(model: str = MODEL, version: str = "1", *, versions: tuple[str, ...] = ("1", "2"),
                     registered_at: float = T0 - 30 * 86400) -> MemoryRegistry:
    """A registry where `version` has served `model` for a month (no cold start, no deploy suspect)."""
    reg = MemoryRegistry()
    for v in versions:
        reg.add_version(model, v, created_at=registered_at)
    reg.aliases[(model, "champion")] = version
    return reg


def incident_prometheus(*, bad_from: float = T0 - 600, bad_until: float = float("inf")) -> StubPrometheus:
    """CTR drops 10 % (a warning) and p99 latency breaches its 0.5 s SLO over [bad_from, bad_until):
    the SLO breach turns critical on its second consecutive cycle (policy.slo_consecutive_cycles 2)."""
    return StubPrometheus({CTR_QUERY: step_curve(0.05, 0.045, bad_from, bad_until),
                           P99_QUERY: step_curve(0.1, 0.8, bad_from, bad_until)})


# --------------------------------------------------------------------------- the Vigil
def make_vigil(config: VigilConfig, *, prometheus: Any = None, registry: Any = None,
               notifiers: dict[str, Notifier] | None = None, start: float = T0) -> Vigil:
    """A Vigil on the config's store, with stand-ins unless real clients are given;
    `notifiers=None` means the config's defaults (Slack with a token, else the sink)."""
    return Vigil(config, clock=ReplayClock(start), store=Store(config.store.url),
                 prometheus=prometheus if prometheus is not None else StubPrometheus(),
                 registry=registry if registry is not None else serving_registry(), notifiers=notifiers)


def metric_value(vigil: Vigil, name: str, **labels: str) -> float:
    """A sample of the Vigil's own /metrics, 0.0 when it was never set."""
    value = vigil.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def vigil_on_files(tmp_path: Path, *, timestamp_column: str = "timestamp") -> Vigil:
    """A Vigil whose one model judges the drift of `user_age` and of the prediction `score`
    from tmp_path/train.parquet and the sample files under tmp_path/samples/ (no KPI)."""
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["user_age"], prediction_column="score", reference={"path": "train.parquet"},
        samples={"path": "samples/", "timestamp_column": timestamp_column})])
    return make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})


def write_reference(tmp_path: Path, rng: np.random.Generator) -> None:
    """For `vigil_on_files`: tmp_path/train.parquet (3,000 rows, user_age ~ N(40, 10),
    score ~ U(0, 1)) and an empty tmp_path/samples/."""
    import pandas as pd

    pd.DataFrame({"user_age": rng.normal(40, 10, 3000), "score": rng.uniform(0, 1, 3000)}).to_parquet(
        tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir(exist_ok=True)
