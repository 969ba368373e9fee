"""The scale benchmark's scenario: N models, each with KPIs, SLOs and GPU series in a real
Prometheus (backfilled with promtool), feature samples and a training reference on disk,
and one deploy in a SQLite MLflow registry.

Written once per parameter set under the work folder and reused by later runs (the
registry and the files are slow to make at 1,000 models; the Vigil store is always new).
The OpenMetrics text is streamed family by family, so writing it needs no memory
proportional to the fleet. A few models (`drifted`) get shifted samples, so incidents
open and the outbox, the drift reports and the alert chain do real work.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor.replay.local_mlflow import sqlite_tracking_uri
from monitor.sources.registry import REFERENCE_TAG, RegistrySource

END = 1_790_000_040.0  # the first sweep's time (on the minute)
SWEEPS = 3  # a first sweep and two warm ones, one interval apart
INTERVAL = 60.0
LOOKBACK = 1800.0
BASELINE = 3600.0
SCRAPE = 60.0
FILE_SPAN = 600.0  # one samples file per 10 minutes
GPU_FAMILIES = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "vllm:gpu_cache_usage_perc",
                "vllm:num_requests_waiting")


@dataclass(frozen=True)
class ScaleParams:
    models: int = 100
    features: int = 50  # a fifth of them categorical
    series: int = 2  # GPUs per model (each GPU family has this many series per model)
    rows: int = 5000  # feature rows per lookback window (the reference has as many)
    kpis: int = 3
    slos: int = 3
    history_h: float = 3.0  # Prometheus history before the first sweep
    drifted: float = 0.02  # share of models whose samples drift

    @property
    def key(self) -> str:
        return (f"m{self.models}-f{self.features}-s{self.series}-r{self.rows}-k{self.kpis}-l{self.slos}"
                f"-h{self.history_h:g}-d{self.drifted:g}")

    def name(self, i: int) -> str:
        return f"model-{i:04d}"

    def categorical(self, j: int) -> bool:
        return j % 5 == 4

    def feature_names(self) -> list[str]:
        return [f"f{j:02d}" for j in range(self.features)]

    def is_drifted(self, i: int) -> bool:
        every = int(round(1 / self.drifted)) if self.drifted > 0 else 0
        return every > 0 and i % every == every - 1


def sweep_times() -> list[float]:
    return [END + k * INTERVAL for k in range(SWEEPS)]


# ------------------------------------------------------------------ Prometheus data
def _stream_family(out: Any, name: str, rows: list[tuple[str, np.ndarray]], ts_text: list[str]) -> None:
    out.write(f"# TYPE {name} gauge\n")
    for labels, values in rows:
        prefix = f"{name}{{{labels}}} "
        out.write("".join(f"{prefix}{v!r} {t}\n" for v, t in zip(values.tolist(), ts_text, strict=True)))


def write_metrics(p: ScaleParams, path: Path, rng: np.random.Generator) -> None:
    """Gauges for every model, from `history_h` before the first sweep to the last one."""
    ts = np.arange(END - p.history_h * 3600.0, sweep_times()[-1] + 1, SCRAPE)
    ts_text = [str(int(t)) for t in ts]
    n = len(ts)
    daily = np.sin(ts / 86400.0 * 2 * np.pi)

    def around(level: float, spread: float) -> np.ndarray:
        return np.round(level + spread * (0.3 * daily + rng.normal(0, 0.1, n)), 4)

    with path.open("w", encoding="utf-8") as out:
        for k in range(p.kpis):
            _stream_family(out, f"bench_kpi_{k}", [(f'model="{p.name(i)}"', around(0.3, 0.05))
                                                    for i in range(p.models)], ts_text)
        for k in range(p.slos):
            _stream_family(out, f"bench_slo_{k}", [(f'model="{p.name(i)}"', np.abs(around(0.1, 0.02)))
                                                    for i in range(p.models)], ts_text)
        for fam in GPU_FAMILIES:
            level = {"DCGM_FI_DEV_FB_USED": 30_000.0, "DCGM_FI_DEV_FB_FREE": 50_000.0,
                     "vllm:gpu_cache_usage_perc": 0.4, "vllm:num_requests_waiting": 2.0}.get(fam, 60.0)
            _stream_family(out, fam, [(f'gpu="{g}",model="{p.name(i)}"', np.abs(around(level, level * 0.1)))
                                      for i in range(p.models) for g in range(p.series)], ts_text)
        out.write("# EOF\n")


# ------------------------------------------------------------------ samples and references
def _frame(p: ScaleParams, rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    cats = np.array(["a", "b", "c", "d", "e", "f"])
    for j, name in enumerate(p.feature_names()):
        if p.categorical(j):
            probs = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
            if shift:
                probs = probs[::-1]
            cols[name] = cats[rng.choice(len(cats), n, p=probs)]
        else:
            cols[name] = np.round(rng.normal(j + shift * 2.0, 1.0 + j / 50, n), 3)
    return pd.DataFrame(cols)


def write_samples(p: ScaleParams, folder: Path, i: int, rng: np.random.Generator) -> None:
    """Files of FILE_SPAN seconds covering every sweep's window; a drifted model's last
    20 minutes are shifted."""
    folder.mkdir(parents=True, exist_ok=True)
    rate = p.rows / LOOKBACK
    start = END - LOOKBACK - FILE_SPAN
    start -= start % FILE_SPAN
    while start < sweep_times()[-1]:
        n = int(rate * FILE_SPAN)
        t = np.sort(rng.uniform(start, start + FILE_SPAN, n))
        shift = 1.0 if p.is_drifted(i) and start >= END - 1200 else 0.0
        df = _frame(p, rng, n, shift)
        df.insert(0, "timestamp", np.round(t, 3))
        df.to_parquet(folder / f"{int(start)}.parquet", index=False)
        start += FILE_SPAN


# ------------------------------------------------------------------ registry
def write_registry(p: ScaleParams, db: Path, refs: Path) -> None:
    """One registered model per model, version 1 tagged with its reference, alias champion."""
    with RegistrySource(_mlflow(db)) as reg:
        for i in range(p.models):
            name = p.name(i)
            reg.create_model(name)
            v = reg.create_version(name, f"vigil-replay:/{name}/1",
                                   tags={REFERENCE_TAG: str(refs / f"{name}.parquet"),
                                         "vigil.created_at": str(END - 30 * 86400)})
            reg.set_alias(name, "champion", v.version)


def _mlflow(db: Path) -> Any:
    from monitor.config import MlflowConfig
    return MlflowConfig(tracking_uri=sqlite_tracking_uri(db), timeout_s=30)


# ------------------------------------------------------------------ the whole scenario
def build(p: ScaleParams, work: Path, log: Any = print) -> Path:
    """The scenario's folder (made once per parameter set)."""
    root = work / p.key
    done = root / "scenario.json"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(17)
    log(f"writing scenario {p.key} under {root}")
    write_metrics(p, root / "metrics.om", rng)
    refs = root / "reference"
    refs.mkdir(exist_ok=True)
    for i in range(p.models):
        _frame(p, rng, p.rows).to_parquet(refs / f"{p.name(i)}.parquet", index=False)
        write_samples(p, root / "samples" / p.name(i), i, rng)
    log("registering models in MLflow (SQLite)")
    write_registry(p, root / "mlflow.db", refs)
    done.write_text(json.dumps(asdict(p)))
    return root


def model_entry(p: ScaleParams, root: Path, i: int) -> dict[str, Any]:
    name = p.name(i)
    sel = f'model="{name}"'
    return {
        "name": name,
        "alias": "champion",
        "owner_channel": f"#{name}",
        "samples": {"path": str(root / "samples" / name), "timestamp_column": "timestamp"},
        "features": [{"name": f, "type": "categorical" if p.categorical(j) else "numeric"}
                     for j, f in enumerate(p.feature_names())],
        "kpis": [{"name": f"kpi_{k}", "query": f"avg(bench_kpi_{k}{{{sel}}})"} for k in range(p.kpis)],
        "slos": [{"name": f"slo_{k}", "query": f"max(bench_slo_{k}{{{sel}}})", "threshold": 10.0}
                 for k in range(p.slos)],
        "gpu": {"selector": sel},
    }


def config_data(p: ScaleParams, root: Path, prometheus_url: str, store_url: str, work: Path) -> dict[str, Any]:
    return {
        "store": {"url": store_url},
        "slack": {"sink_path": str(work / "notifications.jsonl")},
        "spool": {"directory": str(work / "spool")},
        "schedule": {"interval": f"{INTERVAL:g}s", "lookback": f"{LOOKBACK:g}s", "baseline": f"{BASELINE:g}s"},
        "sources": {"prometheus": {"url": prometheus_url, "step": f"{SCRAPE:g}s", "timeout_s": 60},
                    "mlflow": {"tracking_uri": sqlite_tracking_uri(root / "mlflow.db"), "timeout_s": 30}},
        "models": [model_entry(p, root, i) for i in range(p.models)],
    }
