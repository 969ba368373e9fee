"""The composition root: one `Vigil` holds config, clock, store, sources, notifiers and
metrics, and runs cycles. The daemon, the API, replay and the demo all build one.

One cycle for a model at time t:
  1. poll the registry (alias moves -> deploy events)
  2-3. pull signals and run detectors (monitor/cycle/gather.py)
  4. correlate findings into an incident with ranked causes (correlators/)
  5. plan alerts: tier, lifecycle, routes, rollback guard (alerts/pipeline.py)
  6. apply the plan in one transaction with its outbox rows; run a guarded rollback,
     audited before and after (monitor/cycle/apply.py); the sender drains the outbox.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.outbox import Notifier
from correlators.causes import CorrelationSettings, build_incident, merge_findings
from correlators.incident import Incident
from detectors.records import DeployEvent, Finding
from monitor.clock import Clock, LiveClock
from monitor.config import ModelConfig, VigilConfig
from monitor.metrics import VigilMetrics
from monitor.cycle.gather import (Signals, Window, gather_drift, gather_gpu, gather_kpis, gather_logs_traces,
                             gather_slos)
from monitor.sources.errors import SourceState, SourceStatus
from monitor.sources.samples import SampleFiles, read_reference
from monitor.store.repository import Store
from monitor.cycle.apply import to_policy

log = logging.getLogger("vigil")


@dataclass
class CycleReport:
    model: str
    t: float
    findings: list[Finding]
    incident: Incident | None
    step: str
    severity: str | None
    incident_id: int | None
    deploys: list[DeployEvent] = field(default_factory=list)
    rollback: dict[str, Any] | None = None
    blind: list[str] = field(default_factory=list)
    duration_s: float = 0.0


class Vigil:
    def __init__(
        self,
        config: VigilConfig,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        prometheus: Any = None,
        registry: Any = None,
        notifiers: dict[str, Notifier] | None = None,
        metrics: VigilMetrics | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or LiveClock()
        self.store = store or Store(config.store.url)
        if prometheus is None:
            from monitor.sources.prometheus import PrometheusSource

            prometheus = PrometheusSource(config.sources.prometheus)
        if registry is None:
            from monitor.sources.registry import RegistrySource

            registry = RegistrySource(config.sources.mlflow)
        self.prometheus = prometheus
        self.registry = registry
        self.loki, self.tempo = _log_trace_sources(config)
        self.notifiers = notifiers if notifiers is not None else default_notifiers(config)
        self.metrics = metrics or VigilMetrics()
        for m in config.models:
            self.metrics.init_model(m.name)  # counters start at 0, so the first event counts
        self.sources: dict[str, SourceState] = {
            name: SourceState(name, SourceStatus.UNKNOWN, url)
            for name, url in (("prometheus", config.sources.prometheus.url),
                              ("mlflow", config.sources.mlflow.tracking_uri),
                              ("loki", config.sources.loki.url if config.sources.loki else None),
                              ("tempo", config.sources.tempo.url if config.sources.tempo else None))
            if url
        }
        self._sample_files: dict[str, SampleFiles] = {}
        from detectors.anomaly import OnlineAnomalyDetector

        self.anomaly_detector = OnlineAnomalyDetector()  # one configuration for every series
        self._profiles: dict[tuple[str, str, str], Any] = {}
        self._model_locks = {m.name: threading.Lock() for m in config.models}
        self.delivery_lock = threading.Lock()  # one outbox round at a time (see monitor/cycle/deliver.py)
        self.last_cycle: dict[str, CycleReport] = {}

    # ------------------------------------------------------------------ helpers
    def mark_source(self, name: str, up: bool, detail: str = "") -> None:
        st = self.sources.get(name)
        url = st.url if st else ""
        self.sources[name] = SourceState(name, SourceStatus.UP if up else SourceStatus.DOWN, url, detail,
                                         self.clock.now())
        self.metrics.source_up.labels(name).set(1 if up else 0)

    def sample_files(self, m: ModelConfig) -> SampleFiles | None:
        if m.samples is None:
            return None
        if m.name not in self._sample_files:
            self._sample_files[m.name] = SampleFiles(self.config.resolve_path(m.samples.path),
                                                     m.samples.timestamp_column)
        return self._sample_files[m.name]

    def reference_path(self, m: ModelConfig, version: str | None) -> Path:
        path = m.reference.path
        if path is None and version is not None:
            path = self.registry.reference_path(m.registry, version, m.reference.tag)
        if path is None:
            raise ValueError(
                f"models[{m.name}].reference: no training reference: set reference.path or tag version "
                f"{version} with {m.reference.tag}"
            )
        return self.config.resolve_path(path)

    def reference_profile(self, m: ModelConfig, version: str | None, specs: list[Any]) -> tuple[Any, str]:
        """The reference profile for the serving version: memory, then the store, then built once."""
        from detectors.drift import ReferenceProfile, profile_reference

        path = self.reference_path(m, version)
        key = (m.name, version or "-", str(path))
        if key in self._profiles:
            return self._profiles[key], str(path)
        blob = self.store.profile(*key)
        if blob is not None:
            profile = ReferenceProfile.from_bytes(blob)
        else:
            profile = profile_reference(read_reference(path), specs)
            self.store.save_profile(*key, profile.to_bytes(), self.clock.now())
        self._profiles[key] = profile
        return profile, str(path)

    def choose_reference(self, m: ModelConfig, version: str | None, specs: list[Any], w: Window
                         ) -> tuple[Any, str]:
        """Training reference during cold start (and by default after it); with
        `reference_after_cold_start: rolling`, production samples of the `rolling_reference`
        before the window once cold start is over, profiled once a day."""
        from alerts.policy import in_cold_start
        from detectors.drift import profile_reference

        p = self.config.policy_for(m)
        last = self.store.last_deploy(m.name, until=w.t)
        if p.reference_after_cold_start == "training" or in_cold_start(
                last.at if last else None, w.t, to_policy(p)):
            return self.reference_profile(m, version, specs)
        day = int(w.start // 86400)
        key = (m.name, version or "-", f"rolling:{day}")
        if key not in self._profiles:
            from monitor.cycle.gather import current_samples

            frame = current_samples(self, m, day * 86400.0 - p.rolling_reference, day * 86400.0)
            if len(frame) < p.min_samples:
                # Too little production history for a rolling reference: say so, fall back.
                log.warning("rolling reference too small, using the training reference",
                            extra={"model": m.name, "rows": len(frame)})
                return self.reference_profile(m, version, specs)
            self._profiles = {k: v for k, v in self._profiles.items() if not (k[0] == m.name and
                              str(k[2]).startswith("rolling:"))}
            self._profiles[key] = profile_reference(frame, specs)
        return self._profiles[key], f"rolling {p.rolling_reference / 86400:g} d of production samples"

    # ------------------------------------------------------------------ the cycle
    def window(self, m: ModelConfig, t: float, open_onset: float | None) -> Window:
        sched = self.config.schedule
        start = t - sched.lookback
        baseline_end = start
        # While an incident is open its baseline stays where it was before onset, so a
        # lasting drop does not become the new normal and silently resolve itself.
        if open_onset is not None:
            baseline_end = min(baseline_end, open_onset - sched.interval)
        return Window(t=t, start=start, baseline_start=baseline_end - sched.baseline, baseline_end=baseline_end)

    def poll_registry(self, m: ModelConfig, t: float) -> tuple[str | None, list[DeployEvent]]:
        """The serving version now, and deploy events for alias moves since the last poll."""
        from monitor.cycle.apply import record_deploys

        try:
            current = self.registry.alias_version(m.registry, m.alias)
            self.mark_source("mlflow", True)
        except Exception as e:  # noqa: BLE001 - unreachable or rejecting, the registry is blind to us
            log.warning("registry poll failed", extra={"model": m.name, "error": str(e)})
            self.mark_source("mlflow", False, f"{type(e).__name__}: {e}")
            with self.store.tx() as s:
                return self.store.model_state(s, m.name).alias_version, []
        return current, record_deploys(self, m, current, t)

    def run_cycle(self, model: str, t: float | None = None) -> CycleReport:
        from monitor.cycle.apply import apply_alerts

        m = self.config.model(model)
        t = self.clock.now() if t is None else t
        began = time.perf_counter()
        with self._model_locks[m.name]:  # one cycle per model at a time, whoever calls
            serving, new_deploys = self.poll_registry(m, t)
            sig = Signals()
            with self.store.tx() as s:  # what this cycle builds on, read once
                sig.detector_state = dict(self.store.model_state(s, m.name).detector_state or {})
                row = self.store.open_incident(s, m.name)
                earlier = [Finding.from_dict(f) for f in row.findings] if row is not None else []
                opened = row.opened_at if row is not None else None
                open_onset = row.onset if row is not None else None
            w = self.window(m, t, open_onset)
            for gather in (gather_kpis, gather_slos, gather_gpu, gather_logs_traces):
                self._guarded(gather, m, w, sig)
            self._guarded(gather_drift, m, w, sig, serving)
            if "mlflow" in self.sources and self.sources["mlflow"].status == SourceStatus.DOWN:
                sig.blind.append("registry: unavailable (deploy suspects unknown)")
            policy = self.config.policy_for(m)
            story_start = min(w.start, opened) if opened is not None else w.start
            deploys = self.store.deploys(m.name, since=story_start - policy.deploy_suspect_window, until=t)
            settings = CorrelationSettings(deploy_window=policy.deploy_suspect_window)
            incident = build_incident(m.name, sig.findings, deploys, window_start=w.start, window_end=t,
                                      settings=settings, extra_causes=sig.service_causes)
            content = self._incident_so_far(m, incident, earlier, story_start, deploys, settings, t,
                                            sig.service_causes)
            for f in sig.findings:
                self.metrics.findings.labels(m.name, str(f.kind)).inc()
            report = apply_alerts(self, m, incident, content, sig, t, serving)
        report.deploys = new_deploys
        report.duration_s = time.perf_counter() - began
        self.metrics.cycle_duration.labels(m.name).observe(report.duration_s)
        self.last_cycle[m.name] = report
        log.debug("cycle done", extra={"model": m.name, "t": t, "step": report.step, "severity": report.severity,
                                      "findings": len(report.findings), "duration_s": round(report.duration_s, 3)})
        return report

    def _incident_so_far(self, m: ModelConfig, current: Incident | None, earlier: list[Finding],
                         story_start: float, deploys: list[DeployEvent], settings: CorrelationSettings, t: float,
                         service_causes: list[Any]) -> Incident | None:
        """The open incident's whole story: its earlier findings merged with this cycle's,
        correlated again, so causes are ranked on everything seen, not one window."""
        if current is None or not earlier:
            return current
        return build_incident(m.name, merge_findings(earlier, current.findings), deploys,
                              window_start=story_start, window_end=t, settings=settings,
                              extra_causes=service_causes)

    def _guarded(self, gather: Any, m: ModelConfig, w: Window, sig: Signals, *args: Any) -> None:
        """One signal family failing must not take the others with it."""
        try:
            gather(self, m, w, sig, *args)
        except Exception as e:  # noqa: BLE001 - reported as blindness, never as all clear
            log.exception("signal gathering failed", extra={"model": m.name, "gather": gather.__name__})
            sig.blind.append(f"{gather.__name__}: {type(e).__name__}: {e}")
            from monitor.cycle.gather import no_data

            sig.findings.append(no_data(m.name, gather.__name__.removeprefix("gather_"),
                                        f"internal error: {type(e).__name__}: {e}", w))

    def run_all(self, t: float | None = None) -> list[CycleReport]:
        out = []
        for m in self.config.models:
            try:
                out.append(self.run_cycle(m.name, t))
            except Exception:  # noqa: BLE001 - one model's failure never stops the others
                self.metrics.cycle_errors.labels(m.name).inc()
                log.exception("cycle failed", extra={"model": m.name})
        return out

    def deliver(self, now: float | None = None, limit: int = 100) -> int:
        from monitor.cycle.deliver import deliver_due

        return deliver_due(self, self.clock.now() if now is None else now, limit=limit)

    def readiness(self) -> dict[str, SourceState]:
        return dict(self.sources)


def _log_trace_sources(config: VigilConfig) -> tuple[Any, Any]:
    loki = tempo = None
    if config.sources.loki is not None:
        from monitor.sources.loki import LokiSource

        loki = LokiSource(config.sources.loki)
    if config.sources.tempo is not None:
        from monitor.sources.tempo import TempoSource

        tempo = TempoSource(config.sources.tempo)
    return loki, tempo


def default_notifiers(config: VigilConfig) -> dict[str, Notifier]:
    """Slack when a bot token is set, else the JSON-lines sink; Grafana annotations when configured."""
    out: dict[str, Notifier] = {}
    if config.slack.bot_token:
        from alerts.slack import SlackNotifier

        out["slack"] = SlackNotifier(config.slack.bot_token, base_url=config.slack.base_url,
                                     max_rate_limit_retries=config.slack.max_rate_limit_retries,
                                     timeout_s=config.slack.timeout_s)
    else:
        from alerts.sink import JsonlSink

        out["sink"] = JsonlSink(config.resolve_path(config.slack.sink_path))
    if config.grafana.url and config.grafana.token:
        from monitor.grafana.annotations import GrafanaAnnotationNotifier

        out["grafana"] = GrafanaAnnotationNotifier.from_url(config.grafana.url, config.grafana.token)
    return out
