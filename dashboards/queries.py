"""The PromQL, LogQL and TraceQL behind every panel, derived from one model's spec.

Kept apart from the layout so a query can be read, tested and executed against a
real Prometheus without building a dashboard. Grafana variables (`$env`, `$pod`,
`$statistic`) and macros (`$__rate_interval`, `$__range`, `$__interval`) are left
in for Grafana to expand; `builder.render` expands them the same way for tests.

Serving metrics follow the Prometheus HTTP conventions (a latency histogram and a
request counter labelled by service and status code); `ServingMetrics` names them.
Latency histograms named in a model's SLO queries win over the default, so a team
whose SLO reads `grpc_server_handling_seconds_bucket` gets that histogram drawn.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .builder import matchers, quote, regex_alternation
from .spec import DataSourcesSpec, KpiSpec, ModelSpec, PolicySpec, SloSpec

_BUCKET = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)_bucket\b")
# Words that mark an error line in most log formats (logfmt level=error, JSON "level":"error", Python tracebacks).
ERROR_LINE_REGEX = "(?i)(error|exception|fatal|panic|traceback|level=(err|crit))"


@dataclass(frozen=True)
class ServingMetrics:
    """Names of the serving metrics and labels; the defaults follow Prometheus' HTTP conventions."""

    histogram: str = "http_request_duration_seconds"
    requests: str = "http_requests_total"
    service_label: str = "service"
    code_label: str = "code"
    error_codes: str = "5.."
    env_label: str = "env"
    pod_label: str = "pod"
    log_service_label: str = "service"  # Loki stream label holding the service name
    trace_service_attribute: str = "resource.service.name"
    quantiles: tuple[float, ...] = field(default=(0.5, 0.99))


DEFAULT_SERVING = ServingMetrics()


def serving_for(sources: DataSourcesSpec) -> ServingMetrics:
    """The serving names, with the Loki stream label the config names (`sources.loki.service_label`),
    so log panels select the same streams Vigil itself reads."""
    if sources.loki is None:
        return DEFAULT_SERVING
    return replace(DEFAULT_SERVING, log_service_label=sources.loki.service_label)


def histograms_in(queries: list[str]) -> list[str]:
    """Histogram base names referenced as `<name>_bucket` in the given PromQL, in order of first use."""
    seen: list[str] = []
    for q in queries:
        for name in _BUCKET.findall(q):
            if name not in seen:
                seen.append(name)
    return seen


def _duration(seconds: float) -> str:
    """TraceQL duration literal: 0.5 -> '500ms', 2 -> '2s'."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 and ms >= 1000 else f"{max(ms, 1)}ms"


@dataclass(frozen=True)
class ModelQueries:
    model: ModelSpec
    serving: ServingMetrics = DEFAULT_SERVING

    @property
    def policy(self) -> PolicySpec:
        return self.model.policy

    # ----------------------------------------------------------------- selectors
    @property
    def model_matcher(self) -> str:
        return f"model={quote(self.model.name)}"

    @property
    def service_matcher(self) -> str:
        return f"{self.serving.service_label}=~{quote(regex_alternation(self.model.services))}"

    def serving_selector(self, *extra: str) -> str:
        s = self.serving
        return matchers(self.service_matcher, f'{s.env_label}=~"$env"', f'{s.pod_label}=~"$pod"', *extra)

    @property
    def gpu_selector(self) -> str:
        sel = self.model.gpu.selector if self.model.gpu else ""
        return matchers(sel, f'{self.serving.pod_label}=~"$pod"')

    # ----------------------------------------------------------------- variables
    def env_variable(self) -> str | None:
        if not self.model.services:
            return None
        s = self.serving
        return f"label_values({s.requests}{matchers(self.service_matcher)}, {s.env_label})"

    def pod_variable(self) -> str | None:
        s = self.serving
        if self.model.services:
            env = s.env_label + '=~"$env"'
            return f"label_values({s.requests}{matchers(self.service_matcher, env)}, {s.pod_label})"
        if self.model.gpu:
            return f"label_values(DCGM_FI_DEV_GPU_UTIL{matchers(self.model.gpu.selector)}, {s.pod_label})"
        return None

    def feature_variable(self) -> str:
        return f"label_values(vigil_feature_drift{matchers(self.model_matcher)}, feature)"

    # ----------------------------------------------------------------- model health
    def prediction_volume(self) -> str:
        return f"sum(rate(vigil_samples_total{matchers(self.model_matcher)}[$__rate_interval]))"

    def drift_statistics(self) -> tuple[str, ...]:
        """The statistics the policy judges this model's features on (one panel each)."""
        return self.policy.drift_statistics or (self.policy.drift_statistic,)

    def feature_drift(self, statistic: str) -> str:
        sel = matchers(self.model_matcher, 'feature=~"$feature"', f"statistic={quote(statistic)}")
        return f"max by (feature) (vigil_feature_drift{sel})"

    def kpi_value(self, kpi: KpiSpec) -> str:
        return kpi.query

    def kpi_baseline(self, kpi: KpiSpec) -> str:
        return f"max(vigil_kpi_baseline{matchers(self.model_matcher, f'kpi={quote(kpi.name)}')})"

    def kpi_critical_bound(self, kpi: KpiSpec) -> tuple[str, float]:
        """The baseline moved by the critical drop: crossing it is a critical KPI change."""
        pct = kpi.drop_pct
        factor = 1 - pct / 100 if kpi.bad_direction == "down" else 1 + pct / 100
        return f"{self.kpi_baseline(kpi)} * {factor:g}", pct

    def canary_values(self) -> str:
        return f"max by (metric, role) (vigil_canary_metric_value{matchers(self.model_matcher)})"

    def canary_effect(self) -> str:
        return f"max by (metric) (vigil_canary_effect{matchers(self.model_matcher)})"

    def canary_verdict(self) -> str:
        overall = 'metric="_overall"'
        return f"max(vigil_canary_verdict{matchers(self.model_matcher, overall)})"

    def model_state(self) -> str:
        return f"max(vigil_model_state{matchers(self.model_matcher)})"

    def incidents_open(self) -> str:
        return f"sum by (severity) (vigil_incidents_open{matchers(self.model_matcher)})"

    def rollbacks_in_range(self) -> str:
        return f"sum by (status) (increase(vigil_rollbacks_total{matchers(self.model_matcher)}[$__range]))"

    # ----------------------------------------------------------------- serving
    def latency_histograms(self) -> list[str]:
        return histograms_in([s.query for s in self.model.slos]) or [self.serving.histogram]

    def latency_quantile(self, q: float, histogram: str) -> str:
        sel = self.serving_selector()
        return (f"histogram_quantile({q:g}, sum by (le, {self.serving.service_label}) "
                f"(rate({histogram}_bucket{sel}[$__rate_interval])))")

    def request_rate(self) -> str:
        return (f"sum by ({self.serving.service_label}) "
                f"(rate({self.serving.requests}{self.serving_selector()}[$__rate_interval]))")

    def error_ratio(self) -> str:
        """5xx / all, and 0 (not "No data") while there are no errors."""
        s = self.serving
        by = f"sum by ({s.service_label})"
        err_sel = self.serving_selector(f"{s.code_label}=~{quote(s.error_codes)}")
        errors = f"{by} (rate({s.requests}{err_sel}[$__rate_interval]))"
        total = f"{by} (rate({s.requests}{self.serving_selector()}[$__rate_interval]))"
        return f"({errors} or {total} * 0) / {total}"

    def slos_about(self, metric: str, *needles: str) -> list[SloSpec]:
        return [s for s in self.model.slos if metric in s.query and all(n in s.query for n in needles)]

    # ----------------------------------------------------------------- GPU
    def gpu_util(self) -> str:
        return f"max by (pod, gpu) (DCGM_FI_DEV_GPU_UTIL{self.gpu_selector})"

    def gpu_fb_used_ratio(self) -> str:
        sel = self.gpu_selector
        return (f"max by (pod, gpu) (DCGM_FI_DEV_FB_USED{sel} / "
                f"(DCGM_FI_DEV_FB_USED{sel} + DCGM_FI_DEV_FB_FREE{sel}))")

    def kv_cache_usage(self) -> str:
        # vLLM's current name first, the deprecated one for older releases (both 0..1)
        return (f"max by (pod) (vllm:kv_cache_usage_perc{self.gpu_selector} or "
                f"vllm:gpu_cache_usage_perc{self.gpu_selector})")

    def queue_waiting(self) -> str:
        return f"sum by (pod) (vllm:num_requests_waiting{self.gpu_selector})"

    # ----------------------------------------------------------------- logs and traces
    @property
    def log_selector(self) -> str:
        s = self.serving
        return matchers(f"{s.log_service_label}=~{quote(regex_alternation(self.model.services))}")

    def error_logs(self) -> str:
        return f"{self.log_selector} |~ {quote(ERROR_LINE_REGEX)}"

    def error_log_rate(self) -> str:
        return (f"sum by ({self.serving.log_service_label}) "
                f"(count_over_time({self.error_logs()} [$__interval]))")

    def slow_threshold_s(self) -> float:
        """Traces slower than the tightest latency SLO (seconds), else 1 s, count as slow."""
        latency = [s.threshold for s in self.model.slos
                   if s.comparison == "above" and (s.unit in ("s", "seconds") or _BUCKET.search(s.query))]
        return min(latency) if latency else 1.0

    def slow_or_error_traces(self) -> str:
        attr = self.serving.trace_service_attribute
        svc = quote(regex_alternation(self.model.services))
        return f"{{ {attr} =~ {svc} && (status = error || duration > {_duration(self.slow_threshold_s())}) }}"
