"""`models[].canary:` a challenger judged against the champion each cycle
(monitor/cycle/canary.py), and per-metric overrides of how it is judged."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detectors.metric_meaning import MetricClass, metric_class
from monitor.config_types import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CanaryMetricConfig(_Model):
    """Overrides for one KPI or SLO in the canary comparison (`canary.metrics.<name>`)."""

    worse: Literal["up", "down"] | None = None  # default: the KPI's bad_direction / the SLO's comparison
    alpha: float | None = Field(None, gt=0, lt=1)
    fail_effect: float | None = Field(None, ge=0)
    marginal_effect: float | None = Field(None, ge=0)
    min_points: int | None = Field(None, ge=1)
    fail_above: float | None = None  # absolute rule on the challenger's mean, e.g. error rate > 0.05
    fail_below: float | None = None


class CanaryConfig(_Model):
    """A challenger (an MLflow alias serving a share of traffic) judged against the champion
    each cycle, on the model's KPIs and SLOs split by `version_label`, and on the feature
    and prediction distributions of samples whose `version_column` names the version."""

    alias: str = "challenger"
    # The window judged each cycle. Per-step values are taken one range apart (a query over
    # rate(...[5m]) gives one point per 5 minutes), so they are independent points for the
    # U test: an hour of 5-minute rates is 12 points per version.
    window: Duration = 3600.0
    version_label: str = Field("model_version", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    version_value: str = "{version}"  # the label's value for a registry version, e.g. "v{version}"
    alpha: float = Field(0.05, gt=0, lt=1)  # one-sided Mann-Whitney U significance
    fail_effect: float = Field(0.1, ge=0)  # a significant worsening of at least this (10 %) fails
    marginal_effect: float = Field(0.05, ge=0)
    min_points: int = Field(10, ge=1)  # per version and metric; fewer: inconclusive
    metrics: dict[str, CanaryMetricConfig] = Field(default_factory=dict)  # per KPI/SLO name
    traffic_query: str | None = None  # requests/s, split by version like the others
    min_traffic: float = Field(0.0, ge=0)  # challenger mean requests/s below this: inconclusive
    version_column: str | None = None  # samples column naming the version; None: no distribution comparison
    distribution_threshold: float = Field(0.2, gt=0)  # drift effect (policy statistic) that fails
    distribution_marginal: float = Field(0.1, gt=0)
    pull: bool = True  # fail -> remove the challenger alias (and pin serving traffic to the champion)
    promote_after_cycles: int = Field(10, ge=1)  # passes in a row before a promotion is suggested
    auto_promote: bool = False  # move the champion alias to the challenger instead of suggesting

    @field_validator("version_value")
    @classmethod
    def _has_version(cls, v: str) -> str:
        if "{version}" not in v:
            raise ValueError("must contain {version}, e.g. \"{version}\" or \"v{version}\"")
        return v

    @model_validator(mode="after")
    def _marginal_below_fail(self) -> CanaryConfig:
        if self.marginal_effect > self.fail_effect:
            raise ValueError(f"marginal_effect ({self.marginal_effect}) must be <= fail_effect ({self.fail_effect})")
        if self.distribution_marginal > self.distribution_threshold:
            raise ValueError(f"distribution_marginal ({self.distribution_marginal}) must be <= "
                             f"distribution_threshold ({self.distribution_threshold})")
        return self

    def label_value(self, version: str) -> str:
        return self.version_value.replace("{version}", version)


def check_canary_names(c: CanaryConfig, kpis: set[str], slos: set[str], alias: str) -> None:
    """Raises ValueError when `canary.metrics` names no KPI or SLO of the model, or names
    one that is both: its override would judge both (an SLO's `fail_above` on an error
    rate also failing a KPI of that name and pulling a good challenger)."""
    known = kpis | slos
    unknown = sorted(set(c.metrics) - known)
    if unknown:
        raise ValueError(f"canary.metrics names {', '.join(unknown)}: expected the name of one of this model's "
                         f"kpis or slos ({', '.join(sorted(known)) or 'none configured'})")
    if both := sorted(set(c.metrics) & kpis & slos):
        name = both[0]
        raise ValueError(f"canary.metrics.{name}: '{name}' names both a KPI and an SLO of this model, and the "
                         "override would apply to both: rename the KPI or the SLO")
    if c.alias == alias:
        raise ValueError(f"canary.alias '{c.alias}' is the model's own alias: name the challenger's")


def canary_warnings(config: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """What `vigil check-config` warns about a canary (a warning, not an error: it runs, as
    inconclusive): each with the key it is about.

    Without `traffic_query`, a challenger whose every metric reads 0 is taken for one with no
    traffic (monitor/cycle/canary_zero.py): never a pass. A model judged only on error
    counts and rates (by their names, detectors/metric_meaning.py) reads 0 on all of them
    when its challenger is good, so that challenger can never pass. A metric above 0 while
    requests are served (a latency; one worse when it falls: a CTR, a success rate) tells
    them apart, and so does a `volume_query` (the requests behind a metric); a name that says
    neither is not warned about (it may be either)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, m in enumerate(config.models):
        c: CanaryConfig | None = m.canary
        if c is None or c.traffic_query is not None or not (m.kpis or m.slos):
            continue
        if any(x.volume_query for x in (*m.kpis, *m.slos)):  # its requests, split by version (canary_zero.py)
            continue
        named = [(k.name, "", k.bad_direction) for k in m.kpis]
        named += [(s.name, s.unit, "up" if s.comparison == "above" else "down") for s in m.slos]
        worse = [(name, (c.metrics[name].worse if name in c.metrics else None) or bad, metric_class(name, unit))
                 for name, unit, bad in named]
        if all(w == "up" and cls == MetricClass.ERRORS for _, w, cls in worse):
            names = ", ".join(name for name, _, _ in worse)
            out.append((("models", i, "canary"), (
                f"models[{i}]({m.name}).canary: every metric it is judged on ({names}) is an error count or rate, "
                "which a good challenger reads as 0 at every step, as one with no traffic does: without "
                "canary.traffic_query such a challenger is inconclusive every cycle and will never pass or be "
                "promoted (a failing one is still pulled); set canary.traffic_query to its requests/s, or the "
                "error rate's volume_query (its denominator)")))
    return out
