"""The composition root: `Vigil` wires config, clock, store, sources, notifiers and
metrics to the stages of a cycle (monitor/cycle/), and runs them in order:

    gather -> detect -> correlate -> plan -> apply -> act      (per model, at time t)
    deliver                                                   (the outbox, on its own)

Each stage takes only what it needs; `run_cycle` is the one place that reads as the
whole cycle. The daemon, the API, replay and the demo all build one `Vigil`.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from alerts.lifecycle import IncidentStatus
from alerts.outbox import Notifier
from alerts.pipeline import AlertInputs, plan_alerts
from alerts.routing import NotifierRegistry
from correlators.causes import CorrelationSettings
from correlators.incident import Incident
from detectors.anomaly import AnomalyTuning
from detectors.records import FindingKind
from monitor.audit.wiring import install as install_audit
from monitor.clock import Clock, LiveClock
from monitor.config import ModelConfig, VigilConfig
from monitor.cycle.actions import Operator
from monitor.cycle.apply import StateUpdate, apply_plan
from monitor.cycle.correlate import correlate, story_start
from monitor.cycle.deliver import OutboxSender
from monitor.cycle.deploys import DeployWatch
from monitor.cycle.detect import DetectRequest, detect
from monitor.cycle.detect_logs_traces import refit_needed
from monitor.cycle.drift_report import DriftReports
from monitor.cycle.gather import GatherRequest, Sources, gather
from monitor.cycle.health import SourceHealth
from monitor.cycle.known_good import record_clean
from monitor.cycle.logs_traces import LogTraceSources
from monitor.cycle.messages import Links, OutboxWriter
from monitor.cycle.plan import alert_rules, read_cycle_start, read_history
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.rollback_intents import RollbackRunner
from monitor.cycle.samples import SampleReader
from monitor.executors.base import Executor, ExecutorError
from monitor.executors.build import alias_executor, build_serving_executor
from monitor.failpoints import failpoint
from monitor.metrics import VigilMetrics
from monitor.notifiers import default_notifiers, log_trace_clients
from monitor.replicas.fence import LeaseLost
from monitor.sources.errors import SourceState
from monitor.store.repository import Store
from monitor.types import CycleReport, Detection, RawSignals, Window

log = logging.getLogger("vigil")


def _has_drift(incident: Incident | None) -> bool:
    return incident is not None and any(f.kind in (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT)
                                        for f in incident.findings)


class Vigil:
    def __init__(self, config: VigilConfig, *, clock: Clock | None = None, store: Store | None = None,
                 prometheus: Any = None, registry: Any = None, notifiers: dict[str, Notifier] | None = None,
                 metrics: VigilMetrics | None = None) -> None:
        self.config = config
        self.clock = clock or LiveClock()
        self.store = store or Store(config.store.url)
        if prometheus is None:
            from monitor.sources.prometheus import PrometheusSource
            prometheus = PrometheusSource(config.sources.prometheus)
        if registry is None:
            from monitor.sources.registry import RegistrySource
            registry = RegistrySource(config.sources.mlflow)
        self.prometheus, self.registry = prometheus, registry
        self.notifiers = NotifierRegistry(notifiers if notifiers is not None else default_notifiers(config))
        self.metrics = metrics or VigilMetrics()
        for m in config.models:
            self.metrics.init_model(m.name)  # counters start at 0, so the first event counts
        # Before anything can append: the store's audit key, and the checkpointer hearing its commits.
        self.checkpoints = install_audit(self.store, config, self.metrics)
        self._wire()
        self.anomaly_tuning = AnomalyTuning()  # one configuration for every series
        self._model_locks = {m.name: threading.Lock() for m in config.models}
        self.last_cycle: dict[str, CycleReport] = {}
        self._layers: dict[str, list[Executor]] = {}
        self.fence: Any = None  # set by the daemon when replicas share the store (monitor/replicas)

    def _wire(self) -> None:
        c = self.config
        loki, tempo = log_trace_clients(c)
        self.health = SourceHealth.for_sources(
            {"prometheus": c.sources.prometheus.url, "mlflow": c.sources.mlflow.tracking_uri,
             "loki": c.sources.loki.url if c.sources.loki else None,
             "tempo": c.sources.tempo.url if c.sources.tempo else None},
            self.metrics, lambda: self.clock.now())
        samples = SampleReader(c, self.store)
        self.references = ReferenceChooser(c, self.store, self.registry, samples, self.now)
        self.gather_sources = Sources(self.prometheus, self.health, samples, self.references,
                                      LogTraceSources(loki, tempo, c.sources.tempo.search_limit if c.sources.tempo
                                                      else 50), c.sources.prometheus.step)
        self.outbox = OutboxWriter(self.store, self.notifiers, Links.from_config(c))
        self.deploys = DeployWatch(self.registry, self.health, self.store, self.outbox)
        self.rollbacks = RollbackRunner(self.store, self.layers, self.outbox, self.metrics, health=self._layer_health)
        self.operator = Operator(c, self.store, self.outbox, self.metrics, self.rollbacks)
        self.drift_reports = DriftReports(self.store, samples, self.references, c.schedule.lookback)
        self.sender = OutboxSender(self.store, self.notifiers, self.metrics)

    def now(self) -> float:
        return self.clock.now()

    def layers(self, m: ModelConfig) -> list[Executor]:
        """What a rollback of `m` moves, in order: the registry alias, then its serving layer
        (`models[].serving`: KServe, Argo Rollouts, a webhook), built once per model."""
        if m.name not in self._layers:
            serving = build_serving_executor(m, self.registry, base_dir=self.config.base_dir)
            self._layers[m.name] = [alias_executor(self.registry, m.alias), *([serving] if serving else [])]
        return self._layers[m.name]

    def _layer_health(self, layer: str, error: ExecutorError | None) -> None:
        """What rollbacks see of each layer shows in /readyz as `rollback:<layer>`: an MLflow
        that answers the poll but fails the alias move is not "up" for what matters most."""
        if error is None:
            self.health.mark(f"rollback:{layer}", True)
        elif error.retryable:
            self.health.mark(f"rollback:{layer}", False, error.detail)

    def reconcile(self, t: float | None = None) -> None:
        """Finish rollbacks a crash or an outage left pending (start-up; each cycle does its own model)."""
        for m in self.config.models:
            self._reconcile(m, self.clock.now() if t is None else t)

    def _reconcile(self, m: ModelConfig, t: float) -> None:
        try:
            self.rollbacks.reconcile(m, t)
        except LeaseLost:
            raise
        except Exception:  # e.g. a serving layer that cannot be configured: the intent stays pending, said loudly
            log.exception("rollback reconcile failed", extra={"model": m.name})

    def probe_sources(self) -> None:
        """Ping every source now (Prometheus, MLflow, Loki, Tempo): readiness must not wait
        for a cycle to know whether Vigil can see."""
        lt = self.gather_sources.logs_traces
        self.health.probe({"prometheus": self.prometheus, "mlflow": self.registry, "loki": lt.loki, "tempo": lt.tempo})

    @property
    def sources(self) -> dict[str, SourceState]:
        return self.health.states

    def window(self, m: ModelConfig, t: float, open_onset: float | None) -> Window:
        sched = self.config.schedule
        start = t - sched.lookback
        baseline_end = start
        # While an incident is open its baseline stays where it was before onset, so a
        # lasting drop does not become the new normal and silently resolve itself.
        if open_onset is not None:
            baseline_end = min(baseline_end, open_onset - sched.interval)
        return Window(t=t, start=start, baseline_start=baseline_end - sched.baseline, baseline_end=baseline_end)

    # ------------------------------------------------------------------ the cycle
    def run_cycle(self, model: str, t: float | None = None, *, token: int | None = None) -> CycleReport:
        """One cycle of one model. With `token` (a replica's lease on the model), every
        transaction of the cycle is fenced by it: a replica that lost the model cannot write."""
        if token is not None and self.fence is not None:
            with self.store.fenced(self.fence, model, token):
                return self._run_cycle(model, t)
        return self._run_cycle(model, t)

    def _run_cycle(self, model: str, t: float | None) -> CycleReport:
        m = self.config.model(model)
        t = self.clock.now() if t is None else t
        policy = self.config.policy_for(m)
        began = time.perf_counter()
        with self._model_locks[m.name]:  # one cycle per model at a time, whoever calls
            # Before the registry poll: a finished rollback is ours, not an external deploy.
            self._reconcile(m, t)
            serving, new_deploys = self.deploys.poll(m, t, hold=self.rollbacks.in_flight(m.name))
            start = read_cycle_start(self.store, m.name)
            w = self.window(m, t, start.onset)
            known = set(start.detector_state) if policy.anomaly_threshold < 1 else None
            lt = self.gather_sources.logs_traces
            refit = refit_needed(start.detector_state, start.opened_at is not None, logs=lt.loki is not None,
                                 traces=lt.tempo is not None)
            raw = gather(self.gather_sources, GatherRequest(m, w, serving, known, refit))
            found = detect(raw, DetectRequest(m, policy, w, self.config.sources.prometheus.step,
                                              self.config.schedule.interval, self.anomaly_tuning, start))
            blind = self._blind(raw, found)
            settings = CorrelationSettings(deploy_window=policy.deploy_suspect_window)
            deploys = self.store.deploys(m.name, since=story_start(w, start) - settings.deploy_window, until=t)
            story = correlate(m.name, found, m.services, start, deploys, w, settings)
            history = read_history(self.store, m.name, t, found.slo_breached)
            plan = plan_alerts(AlertInputs(story.incident, story.content, history, not blind, t),
                               alert_rules(m, policy))
            applied = apply_plan(self.store, self.outbox, m, plan, story.content,
                                 StateUpdate(history.slo_streaks, found.detector_state, t, blind))
            failpoint("after_apply_commit")
            rollback = None
            if applied.status != IncidentStatus.OPEN and not blind:
                record_clean(self.store, m.name, serving, t)
            if applied.status == IncidentStatus.OPEN and applied.incident_id is not None:
                rollback = self.operator.follow_plan(m, applied.incident_id, plan, t)
                if found.drift_columns and _has_drift(story.incident):
                    self.drift_reports.save_once(m, applied.incident_id, found.drift_columns, serving, t)
        self._record(m, raw, found, applied.opened, applied.severity)
        report = CycleReport(model=m.name, t=t, findings=found.findings, incident=story.incident,
                             step=str(plan.lifecycle.step), severity=applied.severity,
                             incident_id=applied.incident_id, deploys=new_deploys, rollback=rollback, blind=blind,
                             duration_s=time.perf_counter() - began)
        self.metrics.cycle_duration.labels(m.name).observe(report.duration_s)
        self.metrics.cycle_succeeded(m.name, t, report.step)
        self.last_cycle[m.name] = report
        log.debug("cycle done", extra={"model": m.name, "t": t, "step": report.step, "severity": report.severity,
                                      "findings": len(report.findings), "duration_s": round(report.duration_s, 3)})
        return report

    def _blind(self, raw: RawSignals, found: Detection) -> list[str]:
        """What this cycle could not see: any of it means no all clear."""
        blind = raw.gaps.blind + found.blind
        if self.health.is_down("mlflow"):
            blind.append("registry: unavailable (deploy suspects unknown)")
        return blind

    def _record(self, m: ModelConfig, raw: RawSignals, found: Detection, opened: bool, severity: str | None
                ) -> None:
        """Vigil's own metrics for one cycle."""
        if raw.samples is not None:
            self.metrics.samples.labels(m.name).inc(len(raw.samples))
        for kpi, (value, baseline) in found.kpi_levels.items():
            self.metrics.kpi_value.labels(m.name, kpi).set(value)
            self.metrics.kpi_baseline.labels(m.name, kpi).set(baseline)
        for feature, stat, value in found.drift_statistics:
            self.metrics.feature_drift.labels(m.name, feature, stat).set(value)
        for f in found.findings:
            self.metrics.findings.labels(m.name, str(f.kind)).inc()
        if opened and severity is not None:
            self.metrics.incidents_total.labels(m.name, severity).inc()
        self.metrics.set_model_state(m.name, severity)

    def run_all(self, t: float | None = None) -> list[CycleReport]:
        out = []
        for m in self.config.models:
            try:
                out.append(self.run_cycle(m.name, t))
            except Exception as e:  # one model's failure never stops the others
                self.metrics.cycle_failed(m.name, e)
                log.exception("cycle failed", extra={"model": m.name})
        return out

    def deliver(self, now: float | None = None, limit: int = 100) -> int:
        return self.sender.deliver_due(self.clock.now() if now is None else now, limit=limit)

    def readiness(self) -> dict[str, SourceState]:
        return dict(self.health.states)
