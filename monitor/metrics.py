"""Vigil's own /metrics (prometheus-client). Names are a contract with dashboards/."""
from __future__ import annotations

import contextlib
import platform
import threading
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from alerts.lifecycle import Step
from alerts.outbox import DeliveryStatus
from alerts.rollback import ActionStatus
from monitor.liveness import CycleLiveness
from monitor.version import vigil_version

# No `<counter>_created` series: in the text format Prometheus stores each as a series of
# its own that no dashboard or rule reads, doubling the counters' cost (10,000 series at
# 1,000 models). Process-wide in prometheus-client; Vigil's registries are all this module's.
disable_created_metrics()

# The outcomes dashboards list.
ROLLBACK_STATUSES = (ActionStatus.DONE, ActionStatus.DRY_RUN, ActionStatus.REFUSED, ActionStatus.FAILED)
SEVERITIES = ("warning", "critical")
NO_CANARY = -1.0  # vigil_canary_verdict{metric="_overall"} while no challenger runs (pulled, promoted)
DELIVERY_STATUSES = tuple(str(s) for s in DeliveryStatus)  # vigil_notifications_total{status}
FEATURE_DRIFT_SERIES = 10_000  # above this many (model, feature, statistic): only the features that moved


class VigilMetrics:
    """One registry per Vigil instance, so tests and replays never share counters."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._register_cycles(r)
        self._register_delivery(r)
        self._register_model_health(r)
        self._register_canary(r)
        self._register_audit(r)
        # Per-feature drift of every feature, not only those that moved: set (by Vigil) while
        # the fleet's features x statistics fit FEATURE_DRIFT_SERIES (small fleets, dashboards).
        self.all_feature_drift = False
        self._drift_shown: dict[str, set[tuple[str, str]]] = {}
        self._shown_lock = threading.Lock()
        # (gauge, model) -> the label values it shows of the model's KPIs and performance: a
        # cycle drops what it no longer knows without scanning every model's series.
        self._shown: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        # The process' series on a registry of their own: /metrics serves both, while a
        # replay records only Vigil's (a replay's CPU time is nothing to graph).
        self.process_registry = process_registry()

    def _register_cycles(self, r: CollectorRegistry) -> None:
        """How cycles run: duration, errors, what they found and opened, whether they still run."""
        self.cycle_duration = Histogram("vigil_cycle_duration_seconds", "Duration of one monitoring cycle",
                                        ["model"], registry=r,
                                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.cycle_errors = Counter("vigil_cycle_errors_total", "Cycles that raised an unexpected error",
                                    ["model"], registry=r)
        # As Prometheus' own prometheus_config_last_reload_successful: a refused SIGHUP
        # reload is otherwise visible only in the log.
        self.config_reloads = Counter("vigil_config_reloads_total",
                                      "Configuration reloads asked by SIGHUP, by result (applied, refused, partial)",
                                      ["result"], registry=r)
        self.config_reload_ok = Gauge("vigil_config_last_reload_successful",
                                      "0 when the last configuration reload was refused or partial, else 1", registry=r)
        self.config_reload_ok.set(1)
        self.findings = Counter("vigil_findings_total", "Findings produced by detectors", ["model", "kind"],
                                registry=r)
        self.partial_reads = Counter("vigil_partial_reads_total",
                                     "Signals read from a partial answer (Thanos/Mimir warnings, VictoriaMetrics "
                                     "isPartial): judged, never rolled back on automatically", ["model"], registry=r)
        self.prometheus_warnings_ignored = Counter(
            "vigil_prometheus_warnings_ignored_total",
            "Answer warnings sources.prometheus.ignore_warnings matched (no partial mark), once per query they "
            "answered: a batched answer's count for each of its queries, as asked alone", registry=r)
        self.incidents_total = Counter("vigil_incidents_total", "Incidents opened", ["model", "severity"],
                                       registry=r)
        self.incidents_open = Gauge("vigil_incidents_open", "Open incidents", ["model", "severity"], registry=r)
        self.model_state = Gauge("vigil_model_state", "0 ok, 1 warning, 2 critical", ["model"], registry=r)
        self.samples = Counter("vigil_samples_total",
                               "Feature/prediction rows, each counted once, by the first cycle that reads it",
                               ["model"], registry=r)
        self._samples_until: dict[str, float] = {}  # model -> rows up to this time are counted
        self.clock_backwards = Counter("vigil_clock_backwards_total",
                                       "Cycles whose time was before the model's history: lifecycle held",
                                       ["model"], registry=r)
        # For alerting on a stuck Vigil: time() - this > a few intervals.
        last_success = Gauge("vigil_last_successful_cycle_timestamp_seconds",
                             "Cycle time of the model's last cycle that finished", ["model"], registry=r)
        failures = Gauge("vigil_consecutive_failed_cycles", "The model's cycles that failed in a row", ["model"],
                         registry=r)
        self.liveness = CycleLiveness(last_success, failures)

    def _register_delivery(self, r: CollectorRegistry) -> None:
        """What leaves Vigil and what it depends on: notifications, rollbacks, sources."""
        self.notifications = Counter("vigil_notifications_total", "Notification delivery attempts",
                                     ["notifier", "status"], registry=r)
        self.outbox_pending = Gauge("vigil_outbox_pending", "Notifications waiting in the outbox", registry=r)
        # A count cannot tell one page stuck in retry for hours from a busy minute; its age can.
        self.outbox_oldest_age = Gauge("vigil_outbox_oldest_pending_age_seconds",
                                       "How long the oldest notification still waiting has waited (0: none)",
                                       registry=r)
        self.clock_skew = Gauge("vigil_clock_skew_seconds",
                                "This host's clock minus the database's, at the last outbox round", registry=r)
        self.rollbacks = Counter("vigil_rollbacks_total", "Rollbacks by outcome", ["model", "status"], registry=r)
        self.source_up = Gauge("vigil_source_up", "1 when the source answered on its last use", ["source"],
                               registry=r)
        self.baseline_refresh_failures = Counter(
            "vigil_baseline_refresh_failures_total",
            "Loki/Tempo baseline refresh reads that failed while the window read worked (the stored one stood in)",
            ["source"], registry=r)

    def _register_model_health(self, r: CollectorRegistry) -> None:
        """The models' own figures: drift, KPIs, performance, labels."""
        self.feature_drift = Gauge("vigil_feature_drift", "Latest drift statistic per feature",
                                   ["model", "feature", "statistic"], registry=r)
        self.kpi_value = Gauge("vigil_kpi_value", "Latest KPI level", ["model", "kpi"], registry=r)
        self.kpi_baseline = Gauge("vigil_kpi_baseline", "KPI baseline level", ["model", "kpi"], registry=r)
        # Performance: per model x metric x basis (realised, estimated, reference), never per
        # version or window, so the series count stays bounded.
        self.performance = Gauge("vigil_model_performance", "Latest window's performance figure",
                                 ["model", "metric", "basis"], registry=r)
        self.label_coverage = Gauge("vigil_label_coverage_ratio", "Share of the judged window's predictions labelled",
                                    ["model"], registry=r)
        self.label_delay = Gauge("vigil_label_delay_seconds", "Median delay from prediction to label, judged window",
                                 ["model"], registry=r)
        self.labels_received = Counter("vigil_labels_total", "Labels accepted through the API", ["model"],
                                       registry=r)

    def _register_canary(self, r: CollectorRegistry) -> None:
        """Canary analysis (monitor/cycle/canary.py): per metric, both versions' medians and the verdict."""
        self.canary_value = Gauge("vigil_canary_metric_value", "Median of a canary metric per version this cycle",
                                  ["model", "metric", "role"], registry=r)
        self.canary_effect = Gauge("vigil_canary_effect", "Challenger's relative worsening per metric (0.1 = 10 %)",
                                   ["model", "metric"], registry=r)
        self.canary_verdict = Gauge("vigil_canary_verdict",
                                    "0 pass, 1 marginal, 2 inconclusive, 3 fail; metric=\"_overall\" for the canary "
                                    "(-1: no challenger runs)", ["model", "metric"], registry=r)
        self.canary_actions = Counter("vigil_canary_actions_total", "Canary pulls and promotions by outcome",
                                      ["model", "kind", "status"], registry=r)

    def _register_audit(self, r: CollectorRegistry) -> None:
        """The audit log's head, outside the database: Prometheus keeps its history, so a
        log that shrank or was wiped disagrees with max_over_time(vigil_audit_head_seq[...])."""
        self.audit_head_seq = Gauge("vigil_audit_head_seq", "Seq of the newest audit entry at the last checkpoint",
                                    registry=r)
        self.audit_checkpoint_time = Gauge("vigil_audit_checkpoint_timestamp_seconds",
                                           "When this process last wrote an audit checkpoint", registry=r)
        self.audit_keyed = Gauge("vigil_audit_keyed", "1 when audit entries are keyed (HMAC), 0 when plain SHA-256",
                                 registry=r)

    def init_model(self, model: str) -> None:
        """Create the model's counter series at 0 before anything happens.

        Prometheus' increase() cannot count a series' first sample as a change, so a
        rollback counter that first appears at 1 reads "0 rollbacks in range" forever.
        Gauges are left unset: a state nobody has measured yet is not "OK".
        """
        for status in ROLLBACK_STATUSES:
            self.rollbacks.labels(model, status)
        for sev in SEVERITIES:
            self.incidents_total.labels(model, sev)
        self.samples.labels(model)
        self.labels_received.labels(model)
        self.cycle_errors.labels(model)
        self.clock_backwards.labels(model)
        self.partial_reads.labels(model)

    def init_notifier(self, notifier: str) -> None:
        """The notifier's delivery counters at 0 before its first message: an alert on
        increase(...{status="failed"}) would otherwise miss the first refused page."""
        for status in DELIVERY_STATUSES:
            self.notifications.labels(notifier, status)

    def set_performance(self, model: str, figures: dict[str, dict[str, float | None]], coverage: float | None,
                        delay_s: float | None) -> None:
        """The model's performance series become exactly these: `figures` (basis -> metric ->
        value), coverage and delay. An unknown figure (None, or a basis or metric not given:
        no estimate this cycle, no window at all) removes its series rather than leaving last
        cycle's number on the dashboard as if it were current."""
        self._publish("performance", model, {(model, metric, basis): value for basis, values in figures.items()
                                             for metric, value in values.items() if value is not None})
        self._publish("label_coverage", model, {} if coverage is None else {(model,): coverage})
        self._publish("label_delay", model, {} if delay_s is None else {(model,): delay_s})

    def publish_kpis(self, model: str, levels: dict[str, tuple[float, float]]) -> None:
        """The model's KPI gauges become exactly `levels` (kpi -> (value, baseline)): a KPI
        whose query answered nothing this cycle, or that a reload removed, loses its series
        rather than leaving its last level and baseline on the dashboard as current."""
        self._publish("kpi_value", model, {(model, kpi): v for kpi, (v, _) in levels.items()})
        self._publish("kpi_baseline", model, {(model, kpi): b for kpi, (_, b) in levels.items()})

    def _publish(self, name: str, model: str, wanted: dict[tuple[str, ...], float]) -> None:
        """Gauge `name`'s series of `model` become exactly `wanted` (label values -> value)."""
        gauge: Gauge = getattr(self, name)
        with self._shown_lock:
            gone = self._shown.get((name, model), set()) - wanted.keys()
            if wanted:
                self._shown[(name, model)] = set(wanted)
            else:
                self._shown.pop((name, model), None)
        for labels in gone:
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        for labels, value in wanted.items():
            gauge.labels(*labels).set(value)

    def set_feature_drift(self, model: str, statistics: list[tuple[str, str, float]], moved: set[str]) -> None:
        """vigil_feature_drift for the features that moved this cycle only (unless
        `all_feature_drift`): every feature of every model is 244,000 series at 1,000
        models. A feature that stops moving loses its series, so none reads stale."""
        shown = {(f, s): v for f, s, v in statistics if self.all_feature_drift or f in moved}
        with self._shown_lock:
            before = self._drift_shown.get(model, set())
            for feature, stat in before - shown.keys():
                with contextlib.suppress(KeyError):
                    self.feature_drift.remove(model, feature, stat)
            if shown:
                self._drift_shown[model] = set(shown)
            else:
                self._drift_shown.pop(model, None)
        for (feature, stat), value in shown.items():
            self.feature_drift.labels(model, feature, stat).set(value)

    def adopt_feature_drift(self, models: frozenset[str]) -> None:
        """After a worker process's cycles of `models` (monitor/metrics_relay.py) set their
        series here: which of their features show, so this process's next cycle of one of
        them removes what it no longer shows."""
        self._adopt_shown(models)
        shown: dict[str, set[tuple[str, str]]] = {}
        for family in self.feature_drift.collect():
            for s in family.samples:
                if s.labels["model"] in models:
                    shown.setdefault(s.labels["model"], set()).add((s.labels["feature"], s.labels["statistic"]))
        with self._shown_lock:
            for model in models:
                if model in shown:
                    self._drift_shown[model] = shown[model]
                else:
                    self._drift_shown.pop(model, None)

    def _adopt_shown(self, models: frozenset[str]) -> None:
        """As adopt_feature_drift, for the KPI and performance series `_publish` tracks."""
        for name in ("performance", "label_coverage", "label_delay", "kpi_value", "kpi_baseline"):
            shown: dict[str, set[tuple[str, ...]]] = {}
            for family in getattr(self, name).collect():
                for x in family.samples:
                    if x.labels["model"] in models:
                        shown.setdefault(x.labels["model"], set()).add(tuple(x.labels.values()))
            with self._shown_lock:
                for model in models:
                    if model in shown:
                        self._shown[(name, model)] = shown[model]
                    else:
                        self._shown.pop((name, model), None)

    def count_samples(self, model: str, rows: Any, t: float, interval: float) -> None:
        """Add the cycle's rows (a frame with `_ts`) not counted by an earlier cycle: those
        after the model's last counted cycle (this process's first: one interval back), up
        to `t`. A cycle reads a whole lookback window, so counting its length counted each
        row lookback/interval times (30 at the defaults)."""
        since = self._samples_until.get(model, t - interval)
        if "_ts" in getattr(rows, "columns", ()):
            ts = rows["_ts"].to_numpy(dtype=float)
            self.samples.labels(model).inc(int(((ts > since) & (ts <= t)).sum()))
        self._samples_until[model] = max(since, t)

    def publish_canary(self, model: str, values: dict[tuple[str, str], float], effects: dict[str, float],
                       verdicts: dict[str, float]) -> None:
        """The model's canary gauges become exactly these: (metric, role) -> median,
        metric -> effect, metric -> verdict rank. A figure no longer known, or no canary
        at all (all empty), loses its series rather than showing the last one forever."""
        for gauge, wanted in ((self.canary_value, {(model, *k): v for k, v in values.items()}),
                              (self.canary_effect, {(model, k): v for k, v in effects.items()}),
                              (self.canary_verdict, {(model, k): v for k, v in verdicts.items()})):
            for labels, value in wanted.items():
                gauge.labels(*labels).set(value)
            for family in gauge.collect():
                for x in family.samples:
                    key = tuple(x.labels.values())
                    if x.labels.get("model") == model and key not in wanted:
                        with contextlib.suppress(KeyError):
                            gauge.remove(*key)

    def forget_model(self, model: str) -> None:
        """Drop the model's gauge series (its state, open incidents, drift, KPIs, failures in
        a row, ...): it left this process (handed to another replica, removed from the
        config). Dashboards and rules take `max`/`sum` over every replica, so a frozen copy
        of this one's last verdict would outvote the new owner's. Counters stay: increase()
        over them is still right."""
        self.liveness.forget(model)
        self._samples_until.pop(model, None)  # its new owner counts the rows meanwhile
        with self._shown_lock:
            self._drift_shown.pop(model, None)
            self._shown = {k: v for k, v in self._shown.items() if k[1] != model}
        for metric in vars(self).values():
            if not isinstance(metric, Gauge):
                continue
            for family in metric.collect():
                for s in {tuple(x.labels.values()) for x in family.samples if x.labels.get("model") == model}:
                    with contextlib.suppress(KeyError):
                        metric.remove(*s)

    def count_findings(self, model: str, kinds: list[str], partial_reads: int) -> None:
        """One cycle's findings by kind, and the signals it read from a partial answer."""
        for kind in kinds:
            self.findings.labels(model, kind).inc()
        self.partial_reads.labels(model).inc(partial_reads)

    def cycle_succeeded(self, model: str, t: float, step: str) -> None:
        self.liveness.succeeded(model, t)
        if step == Step.HELD:
            self.clock_backwards.labels(model).inc()

    def cycle_failed(self, model: str, error: BaseException) -> None:
        self.cycle_errors.labels(model).inc()
        self.liveness.failed(model, error)

    def set_model_state(self, model: str, severity: str | None) -> None:
        self.model_state.labels(model).set({"warning": 1, "critical": 2}.get(severity or "", 0))
        for sev in ("warning", "critical"):
            self.incidents_open.labels(model, sev).set(1 if severity == sev else 0)


def process_registry() -> CollectorRegistry:
    """process_* (CPU, memory, open files, start time), python_info, python_gc_*, and
    vigil_build_info{version,python} = 1, for "which version runs where" on a dashboard."""
    r = CollectorRegistry()
    ProcessCollector(registry=r)
    PlatformCollector(registry=r)
    GCCollector(registry=r)
    Info("vigil_build", "The running Vigil's version and Python", registry=r).info(
        {"version": vigil_version(), "python": platform.python_version()})
    return r
