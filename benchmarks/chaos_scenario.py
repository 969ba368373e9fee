"""The chaos benchmark's scenario: several models, some with a deploy regression.

Each model has a click-through rate from two counters. A *regression* model gets v2 as
`champion` at its own deploy time and its CTR drops 15 % for `effect` seconds (the recording
assumes v1 serves again after that, as the demo's does); Vigil should open a critical
incident blaming the deploy and move `champion` back to v1, once. A *harmless* model
gets v2 with no change in its numbers (it must not be rolled back); a *steady* model is
never deployed. Which model is which is the scenario's business: the verdict reads it
from `ModelPlan`, never from a name.

The replay clock starts at `start` and steps by `step`; the metrics cover from four hours
before (lookback, baseline and a clock jumped back two hours still find data) to well
after the last step (the settling cycles must not see a gap).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from monitor.replay.openmetrics import OpenMetricsWriter

DAY = pd.Timestamp("2026-11-21T00:00:00Z").timestamp()
H = 3600.0
DATA_BEFORE_S = 4 * H  # baseline + lookback + a clock jumped back 2 h
DATA_AFTER_S = 2 * H
REGRESSION_FACTOR = 0.85  # CTR after a bad deploy: -15 %, over the 5 % critical limit
EFFECT_S = 30 * 60.0
ALIAS = "champion"
ONCALL = "#ml-oncall"


@dataclass(frozen=True)
class ModelPlan:
    name: str
    kind: str  # "regression" | "harmless" | "steady"
    deploy_at: float | None = None  # replay time v2 takes the alias
    good_version: str = "1"  # where a rollback must land
    bad_version: str | None = None  # what a rollback must move away from

    @property
    def regression(self) -> bool:
        return self.kind == "regression"

    @property
    def owner_channel(self) -> str:
        return f"#{self.name}-owners"


@dataclass(frozen=True)
class Scenario:
    start: float
    step: float
    steps: int  # clock steps of the scenario proper (settling comes after)
    models: list[ModelPlan] = field(default_factory=list)

    @property
    def end(self) -> float:
        return self.start + self.steps * self.step

    def at(self, step: int) -> float:
        return self.start + step * self.step

    @property
    def channels(self) -> list[str]:
        return [m.owner_channel for m in self.models] + [ONCALL]


def plan_models(n_regressions: int, deploy_steps: list[int], harmless_step: int | None, steady: int,
                start: float, step: float) -> list[ModelPlan]:
    """Models in a fixed order; regressions deploy at `deploy_steps`, one harmless deploy."""
    out = [ModelPlan(f"model-{i + 1:02d}", "regression", start + s * step, "1", "2")
           for i, s in enumerate(deploy_steps[:n_regressions])]
    n = len(out)
    if harmless_step is not None:
        out.append(ModelPlan(f"model-{n + 1:02d}", "harmless", start + harmless_step * step))
        n += 1
    out += [ModelPlan(f"model-{n + i + 1:02d}", "steady") for i in range(steady)]
    return out


def kpi_query(model: str) -> str:
    return (f'sum(rate(chaos_clicks_total{{model="{model}"}}[5m]))'
            f' / sum(rate(chaos_impressions_total{{model="{model}"}}[5m]))')


def write_metrics(path: Path, scenario: Scenario, settle_s: float, seed: int) -> None:
    """Two counters per model at one-minute resolution, over the whole span and after."""
    rng = np.random.default_rng(seed)
    ts = np.arange(scenario.start - DATA_BEFORE_S, scenario.end + settle_s + DATA_AFTER_S, 60.0)
    w = OpenMetricsWriter()
    for m in scenario.models:
        rps = 40 * (1 + 0.1 * np.sin(2 * np.pi * (ts - DAY) / 86400 + rng.uniform(0, 6)))
        impressions = rng.poisson(rps * 60 * 10).astype(float)
        ctr = np.full(len(ts), rng.uniform(0.04, 0.06)) * (1 + rng.normal(0, 0.01, len(ts)))
        if m.regression and m.deploy_at is not None:
            ctr[(ts >= m.deploy_at) & (ts < m.deploy_at + EFFECT_S)] *= REGRESSION_FACTOR
        clicks = rng.binomial(impressions.astype(int), np.clip(ctr, 0, 1)).astype(float)
        labels = {"model": m.name, "env": "prod"}
        w.add("chaos_impressions_total", labels, ts, np.cumsum(impressions), type="counter", help="Items shown")
        w.add("chaos_clicks_total", labels, ts, np.cumsum(clicks), type="counter", help="Items clicked")
    w.write(path)


def write_registry(path: Path, scenario: Scenario) -> None:
    """registry.jsonl: v1 serving for a month; v2 registered ten minutes before its deploy."""
    month_ago = scenario.start - 30 * 86400
    events: list[dict[str, Any]] = []
    for m in scenario.models:
        events += [
            {"type": "model", "name": m.name, "at": month_ago - 3600, "tags": {"team": "chaos"}},
            {"type": "version", "name": m.name, "version": "1", "at": month_ago - 1800},
            {"type": "alias", "name": m.name, "alias": ALIAS, "version": "1", "at": month_ago},
        ]
        if m.deploy_at is not None:
            events += [
                {"type": "version", "name": m.name, "version": "2", "at": m.deploy_at - 600},
                {"type": "alias", "name": m.name, "alias": ALIAS, "version": "2", "at": m.deploy_at},
            ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


@dataclass(frozen=True)
class Endpoints:
    """Where the replicas find the world (all on 127.0.0.1)."""

    store_url: str
    prometheus_url: str
    mlflow_url: str
    slack_base_url: str
    token_env: str  # the bot token's environment variable (never written in the file)


def write_config(path: Path, scenario: Scenario, ends: Endpoints, interval_s: float) -> None:
    """vigil.yaml for every replica: a short real interval, automatic rollback on."""
    models = [{"name": m.name, "alias": ALIAS, "owner_channel": m.owner_channel, "oncall_channel": ONCALL,
               "kpis": [{"name": "ctr", "query": kpi_query(m.name), "bad_direction": "down"}]}
              for m in scenario.models]
    config = {
        "sources": {"prometheus": {"url": ends.prometheus_url, "step": "60s", "timeout_s": 5, "retries": 1},
                    "mlflow": {"tracking_uri": ends.mlflow_url, "timeout_s": 3}},
        "store": {"url": ends.store_url},
        "slack": {"bot_token": f"${{{ends.token_env}}}", "base_url": ends.slack_base_url, "timeout_s": 5},
        # The real interval is short; the replay clock moves `scenario.step` per interval.
        "schedule": {"interval": f"{interval_s}s", "lookback": "30m", "baseline": "1h",
                     "misfire_grace": f"{interval_s}s"},
        "policy": {"kpi_drop_critical_pct": 5,
                   # fleet_max off: the scenario's regressions are independent deploys by construction
                   "rollback": {"enabled": True, "dry_run": False, "cooldown": "6h", "max_per_day": 2,
                                "min_confidence": 0.6, "fleet_max": None}},
        "models": models,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
