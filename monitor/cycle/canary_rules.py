"""The metrics a canary is judged on: every KPI and SLO of the model, each with its rule
(direction of "worse", alpha, effects, absolute limits) and its query."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.canary import MetricRule
from detectors.records import Direction
from monitor.config import CanaryConfig, ModelConfig


@dataclass(frozen=True)
class MetricQuery:
    rule: MetricRule
    query: str


def metric_rules(m: ModelConfig, c: CanaryConfig) -> list[MetricQuery]:
    """Every KPI and SLO of the model, with the canary's thresholds and the metric's own
    direction of "worse" unless `canary.metrics.<name>` says otherwise.

    The canary fails when any metric fails, so `canary.alpha` is shared among the metrics
    (Bonferroni): a good challenger fails a cycle's U tests with probability <= alpha
    however many KPIs and SLOs it is judged on. A per-metric alpha is used as written."""
    out = []
    named: list[tuple[str, str, Direction]] = [(k.name, k.query, k.direction) for k in m.kpis]
    named += [(s.name, s.query, Direction.UP if s.comparison == "above" else Direction.DOWN) for s in m.slos]
    shared_alpha = c.alpha / max(len(named), 1)
    for name, query, worse in named:
        o = c.metrics.get(name)
        rule = MetricRule(
            name=name,
            worse=Direction(o.worse) if o is not None and o.worse else worse,
            alpha=_pick(o, "alpha", shared_alpha), fail_effect=_pick(o, "fail_effect", c.fail_effect),
            marginal_effect=min(_pick(o, "marginal_effect", c.marginal_effect), _pick(o, "fail_effect", c.fail_effect)),
            min_points=int(_pick(o, "min_points", c.min_points)),
            fail_above=o.fail_above if o is not None else None, fail_below=o.fail_below if o is not None else None)
        out.append(MetricQuery(rule, query))
    return out


def _pick(o: Any, name: str, default: float) -> float:
    value = getattr(o, name, None) if o is not None else None
    return default if value is None else value
