"""The composition root: `Vigil` wires config, clock, store, sources, notifiers and
metrics to the stages of a cycle (monitor/cycle/), and runs them in order:

    gather -> detect -> correlate -> plan -> apply -> act      (per model, at time t)
    deliver                                                   (the outbox, on its own)

Each stage takes only what it needs; `run_cycle` is the one place that reads as the
whole cycle. The daemon, the API, replay and the demo all build one `Vigil`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from alerts.lifecycle import IncidentStatus
from alerts.outbox import Notifier
from alerts.pipeline import AlertInputs
from alerts.receivers.base import receivers_of
from alerts.routing import NotifierRegistry
from correlators.causes import CorrelationSettings
from detectors.anomaly import AnomalyTuning
from monitor.audit.wiring import install as install_audit
from monitor.clock import Clock, LiveClock
from monitor.config import ModelConfig, PolicyConfig, VigilConfig
from monitor.cores import usable_cores
from monitor.cycle.actions import Operator
from monitor.cycle.apply import StateUpdate, apply_plan
from monitor.cycle.canary import CanaryAnalysis, CanaryJudgement
from monitor.cycle.correlate import correlate, story_start
from monitor.cycle.cycle_metrics import has_drift, record_cycle
from monitor.cycle.deliver import OutboxSender
from monitor.cycle.deploys import DeployWatch
from monitor.cycle.detect import DetectRequest, detect
from monitor.cycle.detect_drift import EXPORTED_STATISTICS
from monitor.cycle.detect_logs_traces import can_fall_back, refit_needed
from monitor.cycle.drift_report import DriftReports
from monitor.cycle.gather import GatherRequest, Sources, gather
from monitor.cycle.grouping import Grouper
from monitor.cycle.health import SourceHealth
from monitor.cycle.logs_traces import LogTraceSources
from monitor.cycle.messages import Links, OutboxWriter
from monitor.cycle.model_locks import ModelLocks
from monitor.cycle.performance import PerformanceStage
from monitor.cycle.performance_inputs import PerformanceInputs
from monitor.cycle.plan import (
    CycleStart,
    alert_rules,
    blamed_deploy,
    planner,
    read_cycle_start,
    read_deploys,
    read_history,
)
from monitor.cycle.prefetch import ModelPlan, Prefetched, prefetch
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.rollback_intents import RollbackRunner
from monitor.cycle.rollback_landed import landed
from monitor.cycle.rollback_lease import LeaseToken, drive_here
from monitor.cycle.samples import SampleReader
from monitor.cycle.send_mute import SendTimeSilences
from monitor.cycle.suppress import FiringLabels, inhibit_rules, read_suppression
from monitor.executors.base import Executor, ExecutorError
from monitor.executors.build import alias_executor, build_serving_executor, challenger_executor
from monitor.failpoints import failpoint
from monitor.metrics import FEATURE_DRIFT_SERIES, VigilMetrics
from monitor.notifiers import default_notifiers, log_trace_clients
from monitor.replicas.fence import LeaseLost
from monitor.sources.errors import SourceState
from monitor.store.model_now import ModelNow, drift_by_feature, save_model_now
from monitor.store.repository import Store
from monitor.sweep_pool import SweepPool, process_count
from monitor.types import CycleReport, Detection, RawSignals, Window

log = logging.getLogger("vigil")


class Vigil:
    def __init__(self, config: VigilConfig, *, clock: Clock | None = None, store: Store | None = None,
                 prometheus: Any = None, registry: Any = None, notifiers: dict[str, Notifier] | None = None,
                 metrics: VigilMetrics | None = None) -> None:
        self.config = config
        # Sweep workers build their Vigil from the configuration: only one built from it alone
        # (the daemon's, a reload's successor of it) may hand cycles to them.
        self.own_sources = store is None and prometheus is None and registry is None and notifiers is None
        self.clock = clock or LiveClock()
        self.metrics = metrics or VigilMetrics()
        if prometheus is None:
            from monitor.sources.prometheus import PrometheusSource
            prometheus = PrometheusSource(config.sources.prometheus, self.metrics.prometheus_warnings_ignored.inc)
        if registry is None:
            from monitor.sources.registry import RegistrySource
            registry = RegistrySource(config.sources.mlflow)
        self.prometheus, self.registry = prometheus, registry
        self.notifiers = NotifierRegistry(notifiers if notifiers is not None else default_notifiers(config))
        for m in config.models:
            self.metrics.init_model(m.name)  # counters start at 0, so the first event counts
        watched = sum(len(m.features) + (1 if m.prediction_column else 0) for m in config.models)
        self.metrics.all_feature_drift = watched * len(EXPORTED_STATISTICS) <= FEATURE_DRIFT_SERIES
        self.store = store or Store(config.store.url)
        with contextlib.ExitStack() as refused:  # e.g. an unreadable audit key: no connection of its own store is left
            refused.callback(self.store.close) if store is None else None
            # Before anything can append: the store's audit key, and the checkpointer hearing its commits.
            self.checkpoints = install_audit(self.store, config, self.metrics)
            self._wire()
            refused.pop_all()  # built: the store stays open
        self.anomaly_tuning = AnomalyTuning()  # one configuration for every series
        self.model_locks = ModelLocks(m.name for m in config.models)
        self._models = {m.name: m for m in config.models}
        self.last_cycle: dict[str, CycleReport] = {}
        self._layers: dict[str, list[Executor]] = {}
        self.fence: Any = None  # set by the daemon when replicas share the store (monitor/replicas)
        self.lease_token: LeaseToken | None = None  # with it: a model's token while this replica holds its lease
        self._firing = FiringLabels()  # other models' open incidents, labelled once per change
        self.sweep_pool = SweepPool(Vigil, config)  # no process until a sweep needs one

    def _wire(self) -> None:
        c = self.config
        loki, tempo = log_trace_clients(c)
        self.health = SourceHealth.for_sources(
            {"prometheus": c.sources.prometheus.url, "mlflow": c.sources.mlflow.tracking_uri, "loki": c.sources.loki.url
             if c.sources.loki else None, "tempo": c.sources.tempo.url if c.sources.tempo else None},
            self.metrics, lambda: self.clock.now())
        spool = c.spool.open(c.base_dir)
        samples = SampleReader(c, self.store, spool)
        self.references = ReferenceChooser(c, self.store, self.registry, samples, self.now, spool)
        self.gather_sources = Sources(self.prometheus, self.health, samples, self.references,
                                      LogTraceSources.wired(loki, tempo, c.sources), c.sources.prometheus.step)
        self.outbox = OutboxWriter(self.store, self.notifiers, Links.from_config(c), self._mentions)
        self.grouper = Grouper(c, self.store, self.outbox)
        self.rollbacks = RollbackRunner(self.store, self.layers, self.outbox, self.metrics, health=self._layer_health,
                                        pull_layers=self.pull_layers, config=c)
        self.rollbacks.lease = lambda model, drive: drive_here(self.store, self.fence, self.lease_token, model, drive,
                                                               self.model_locks)
        self.deploys = DeployWatch(self.registry, self.health, self.store, self.outbox, partial(landed, self.rollbacks))
        self.canary = CanaryAnalysis(self.prometheus, self.registry, self.store, self.rollbacks, self.outbox,
                                     self.metrics, c.sources.prometheus.step)
        self.operator = Operator(c, self.store, self.outbox, self.metrics, self.rollbacks, self.registry)
        self.performance = PerformanceStage(PerformanceInputs(c, self.store, samples), self.store, self.metrics)
        self.drift_reports = DriftReports(self.store, samples, self.references, c.schedule.lookback, c.policy_for)
        mutes = SendTimeSilences(self.store, lambda: self.config, receivers_of(self.notifiers))
        self.sender = OutboxSender(self.store, self.notifiers, self.metrics, mutes=mutes)

    def now(self) -> float:
        return self.clock.now()

    def _mentions(self, model: str, severity: str | None) -> list[str]:
        """Who a threaded state change @-mentions: the model's `mentions`, else the global ones."""
        try:
            m = self.config.model(model)
        except KeyError:
            return self.config.mentions.for_severity(severity)
        return (m.mentions or self.config.mentions).for_severity(severity)

    def layers(self, m: ModelConfig) -> list[Executor]:
        """What a rollback of `m` moves, in order: the registry alias, then its serving layer
        (`models[].serving`: KServe, Argo Rollouts, a webhook), built once per model."""
        if m.name not in self._layers:
            serving = build_serving_executor(m, self.registry, base_dir=self.config.base_dir)
            self._layers[m.name] = [alias_executor(self.registry, m.alias), *([serving] if serving else [])]
        return self._layers[m.name]

    def pull_layers(self, m: ModelConfig) -> list[Executor]:
        """What pulling `m`'s canary moves: the challenger alias (removed), then the serving
        layer, pinned to the champion (KServe: canary traffic to 0; Argo: abort and undo)."""
        if m.canary is None:  # removed from the config while a pull was pending: that pull ends here
            raise ExecutorError(False, f"model {m.name} has no canary configured any more: the challenger's "
                                       "alias is not known; nothing more was moved", reason="config")
        serving = self.layers(m)[1:]
        return [challenger_executor(self.registry, m.canary.alias, m.alias), *serving]

    def _layer_health(self, layer: str, error: ExecutorError | None) -> None:
        """Each layer as rollbacks see it, in /readyz as `rollback:<layer>`: an MLflow answering the poll
        but failing the alias move is not "up" for what matters most."""
        if error is None:
            self.health.mark(f"rollback:{layer}", True)
        elif error.retryable:
            self.health.mark(f"rollback:{layer}", False, error.detail)

    def reconcile(self, t: float | None = None) -> None:
        """Finish rollbacks a crash or an outage left pending (start-up; each cycle does its own model)."""
        for m in self.config.models:
            self._reconcile(m, self.clock.now() if t is None else t)

    def _reconcile(self, m: ModelConfig, t: float) -> bool:
        """False when the model had no rollback open: then none is in flight for the cycle's poll
        either (an intent asked since is found by the poll itself, in its write: deploys.py)."""
        try:
            return bool(self.rollbacks.reconcile(m, t))
        except LeaseLost:
            raise
        except Exception:  # e.g. a serving layer that cannot be configured: the intent stays pending, said loudly
            log.exception("rollback reconcile failed", extra={"model": m.name})
            return True

    def probe_sources(self) -> None:
        """Ping every source now (Prometheus, MLflow, Loki, Tempo): readiness must not wait
        for a cycle to know whether Vigil can see."""
        lt = self.gather_sources.logs_traces
        self.health.probe({"prometheus": self.prometheus, "mlflow": self.registry, "loki": lt.loki, "tempo": lt.tempo})

    @property
    def sources(self) -> dict[str, SourceState]:
        return self.health.states

    def window(self, m: ModelConfig, t: float, open_onset: float | None, released: float | None = None) -> Window:
        sched = self.config.schedule
        start = t - sched.lookback
        baseline_end = start
        # An open incident's baseline stays before its onset: a lasting drop must not become the new normal.
        if open_onset is not None:
            baseline_end = min(baseline_end, open_onset - sched.interval)
        kpis = None if released is None else min(start, released - sched.interval)  # a release's own hour before
        return Window(t, start, baseline_end - sched.baseline, baseline_end, kpis)

    # ------------------------------------------------------------------ the cycle
    def run_cycle(self, model: str, t: float | None = None, *, token: int | None = None,
                  prefetched: Prefetched | None = None) -> CycleReport:
        """One cycle of one model. With `token` (a replica's lease on the model), every
        transaction of the cycle is fenced by it: a replica that lost the model cannot write.
        `prefetched`: the sweep's batched reads (`prefetch`), used when made for this `t`."""
        if prefetched is not None and prefetched.t != t:
            prefetched = None  # made for another time: its windows and aliases are not this cycle's
        if token is not None and self.fence is not None:
            with self.store.fenced(self.fence, model, token):
                return self._run_cycle(model, t, prefetched)
        return self._run_cycle(model, t, prefetched)

    def _run_cycle(self, model: str, t: float | None, prefetched: Prefetched | None = None) -> CycleReport:
        m = self._models.get(model) or self.config.model(model)
        t = self.clock.now() if t is None else t
        policy = self.config.policy_for(m)
        began = time.perf_counter()
        with self.model_locks.cycle(m.name):  # one cycle per model at a time, whoever calls; no asked drive beside
            # Before the registry poll: a finished rollback is ours, not an external deploy.
            hold = self._reconcile(m, t) and self.rollbacks.in_flight(m.name)  # nothing was open: none is
            aliases = prefetched.aliases.get(m.registry) if prefetched and prefetched.aliases is not None else None
            serving, new_deploys = self.deploys.poll(m, t, hold=hold, aliases=aliases)
            start = read_cycle_start(self.store, m.name)
            w = self.window(m, t, start.onset, start.released)
            raw, found, canary = self._observe(m, w, start, serving, policy, prefetched)
            blind = self._blind(raw, found)
            settings = CorrelationSettings(deploy_window=policy.deploy_suspect_window)
            with self.store.one_transaction():  # what planning reads: one transaction, not five
                deployed = read_deploys(self.store, m.name, story_start(w, start) - settings.deploy_window, t)
                story = correlate(m.name, found, m.services, start, deployed.window, w, settings)
                history = read_history(self.store, m.name, t, found.slo_breached, blamed_deploy(story.content),
                                       start.state, deployed)
                down = [n for n in self.health.states if self.health.is_down(n)]
                suppression = read_suppression(self.store, self.config, m, t, down, self._firing)
            plan, replan = planner(AlertInputs(story.incident, story.content, history, not blind, t, suppression,
                                               raw.gaps.partial), alert_rules(m, policy, inhibit_rules(self.config)))
            # A cycle that saw everything and leaves nothing open counts for the serving version
            # (rollback targets), in the same transaction as the state.
            update = StateUpdate(history.slo_streaks, found.detector_state, t, None if blind else serving)
            applied = apply_plan(self.store, self.outbox, m, plan, story.content, update, self.grouper, replan)
            failpoint("after_apply_commit")
            rollback = None
            if canary is not None:  # before any rollback: the model has one action in flight at a time
                incident_id = applied.incident_id if applied.status == IncidentStatus.OPEN else None
                rollback = self.canary.act(m, canary, incident_id, policy, t, found.findings)
            if applied.status == IncidentStatus.OPEN and applied.incident_id is not None:
                rollback = self.operator.follow_plan(m, applied.incident_id, applied.plan, t) or rollback
                if found.drift_columns and has_drift(story.incident):
                    self.drift_reports.save_once(m, applied.incident_id, found.drift_columns, serving, t)
        record_cycle(self.metrics, m, t, raw, found, applied, self.config.schedule.interval)
        report = CycleReport(model=m.name, t=t, findings=found.findings, incident=story.incident,
                             step=str(applied.plan.lifecycle.step), severity=applied.severity,
                             incident_id=applied.incident_id, deploys=new_deploys, rollback=rollback, blind=blind,
                             duration_s=time.perf_counter() - began,
                             canary=canary.verdict if canary is not None else None)
        self.metrics.cycle_duration.labels(m.name).observe(report.duration_s)
        save_model_now(self.store.tx, ModelNow(m.name, t, report.step, report.severity, report.duration_s,
            blind + self.deploys.unseen(m), drift_by_feature(found.drift_statistics)))  # + what status shows
        self.metrics.cycle_succeeded(m.name, t, report.step)
        self.last_cycle[m.name] = report
        log.debug("cycle done", extra={"model": m.name, "t": t, "step": report.step, "severity": report.severity,
                                      "findings": len(report.findings), "duration_s": round(report.duration_s, 3)})
        return report

    def _observe(self, m: ModelConfig, w: Window, start: CycleStart, serving: str | None, policy: PolicyConfig,
                 prefetched: Prefetched | None) -> tuple[RawSignals, Detection, CanaryJudgement | None]:
        """Stages 1 and 2, gather and detect, with the canary's and the delayed labels' findings."""
        known = set(start.detector_state) if policy.anomaly_threshold < 1 else None
        lt = self.gather_sources.logs_traces
        refit = refit_needed(start.detector_state, start.opened_at is not None, logs=lt.loki is not None,
                             traces=lt.tempo is not None)
        sources = self.gather_sources
        if prefetched is not None:
            sources = dataclasses.replace(sources, prometheus=prefetched.prometheus(self.prometheus))
        raw = gather(sources, GatherRequest(m, w, serving, known, refit, self.config.root_cause_for(m),
                                            lambda source: can_fall_back(start.detector_state, w.start, source)))
        found = detect(raw, DetectRequest(m, policy, w, self.config.sources.prometheus.step,
                                          self.config.schedule.interval, self.anomaly_tuning, start))
        canary = self.canary.judge(m, w, policy, raw.all_samples) if m.canary is not None else None
        if canary is not None:
            found.findings.extend(canary.findings)
        perf = self.performance.run(m, w.t, serving, w)  # delayed labels and estimates: model symptoms
        found.findings.extend(perf.findings)
        found.blind.extend(perf.blind)
        return raw, found, canary

    def _blind(self, raw: RawSignals, found: Detection) -> list[str]:
        """What this cycle could not see: any of it means no all clear."""
        mlflow = ["registry: unavailable (deploy suspects unknown)"] if self.health.is_down("mlflow") else []
        return raw.gaps.blind + found.blind + mlflow

    def run_all(self, t: float | None = None) -> list[CycleReport]:
        out = []
        for m in self.config.models:
            try:
                out.append(self.run_cycle(m.name, t))
            except Exception as e:  # one model's failure never stops the others
                self.metrics.cycle_failed(m.name, e)
                log.exception("cycle failed", extra={"model": m.name})
        return out

    def prefetch(self, models: list[str], t: float) -> Prefetched:
        """The sweep's batched reads for `models` at `t` (monitor/cycle/prefetch.py): windows
        as each cycle will compute them, a day of history for models never run before."""
        fresh, opened = self.store.models_never_run(models), self.store.open_onsets(models)
        plans = []
        for name in models:
            m = self._models[name]
            on = self.config.policy_for(m).anomaly_threshold < 1  # the anomaly detector runs
            plans.append(ModelPlan(m, self.window(m, t, opened.get(name)), name in fresh and on,
                                   self.config.root_cause_for(m), on))
        return prefetch(self.config, plans, t, self.prometheus, self.registry)

    def run_sweep(self, t: float | None = None, models: list[str] | None = None, *,
                  workers: int | None = None, token: Callable[[str], int | None] | None = None,
                  processes: int | None = None) -> list[CycleReport]:
        """Every model's cycle at one time `t`, after one batched read for all of them. In `processes`
        worker processes (default `schedule.sweep_processes`; monitor/sweep_pool.py) when this Vigil was
        built from its configuration alone, else here, `workers` cycles at a time. One model's failure
        never stops the others. `token(model)`: the replica's fencing token for the model (see run_cycle)."""
        t = self.clock.now() if t is None else t
        self.drift_reports.background = True  # seconds of Evidently never hold a cycle (or a worker's chunk) up
        names = models if models is not None else [m.name for m in self.config.models]
        n = self._processes() if processes is None else processes
        with self.drift_reports.sweeping():  # the reports render in the gap after it
            done = None
            if n > 0 and self.own_sources and len(names) > 1:
                with self.model_locks.cycles(names) as held:  # the workers' cycles are ours: no asked drive
                    done = self.sweep_pool.sweep(self, t, names, token, n, held.release)  # beside, chunk by chunk
            return done if done is not None else self.sweep_here(t, names, workers=workers, token=token)[0]

    def _processes(self) -> int:
        """On the configured fleet, not the models owned now: a rebalance never switches processes and threads."""
        return process_count(self.config.schedule.sweep_processes, len(self.config.models), self.config.store.url)

    def sweep_here(self, t: float, names: list[str], *, workers: int | None = None,
                   token: Callable[[str], int | None] | None = None) -> tuple[list[CycleReport], dict[str, str]]:
        """`names`' cycles at `t` on this process's threads: the reports, and the error of each cycle
        that failed (a cycle stopped by a lost lease is neither)."""
        self.drift_reports.background = True  # seconds of Evidently never hold a cycle up
        try:
            pre: Prefetched | None = self.prefetch(names, t)
        except Exception:  # the cycles read on their own, as before
            log.exception("sweep prefetch failed", extra={"t": t})
            pre = None
        failed: dict[str, str] = {}

        def one(name: str) -> CycleReport | None:
            try:
                return self.run_cycle(name, t, prefetched=pre, token=token(name) if token else None)
            except LeaseLost as e:  # another replica owns the model now: its cycle, not ours, writes
                log.warning("cycle stopped: lease lost", extra={"model": name, "error": str(e)})
                return None
            except Exception as e:
                failed[name] = f"{type(e).__name__}: {e}"
                self.metrics.cycle_failed(name, e)
                log.exception("cycle failed", extra={"model": name})
                return None

        n = workers or self.config.schedule.sweep_workers or usable_cores()
        if n == 1 or len(names) < 2:
            done = [one(name) for name in names]
        else:
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="vigil-sweep") as pool:
                done = list(pool.map(one, names))
        return [r for r in done if r is not None], failed

    def close(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Stop the sweep's workers once their chunks are done (`wait`: up to `timeout`, then killed: False)."""
        self.drift_reports.close()  # its queue is dropped either way: the order does not matter
        return self.sweep_pool.close(wait, timeout)

    def deliver(self, now: float | None = None, limit: int = 100) -> int:
        live = now is None and isinstance(self.clock, LiveClock)  # claims by the database's clock
        return self.sender.deliver_due(self.clock.now() if now is None else now, limit=limit, database_clock=live)

    def readiness(self) -> dict[str, SourceState]:
        return dict(self.health.states)
