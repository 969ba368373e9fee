"""Replay: the production cycle over recorded history, answering "what would have fired?".

`replay()` steps a ReplayClock over a `ReplaySpan` (start to end by step), runs every
model's cycle and the outbox sender at each step, and writes one JSON object per
incident; `ReplayOptions` says where, and against which sources. `run_bundle()`
starts what a scenario bundle needs on 127.0.0.1 (a real Prometheus backfilled from
`metrics.om`, a SQLite MLflow registry filled from `registry.jsonl` as the replay clock
passes each event), replays the bundle's whole span, and stops everything it started.

Bundle format (a directory):
  vigil.yaml       the config; sources.prometheus.url and sources.mlflow.tracking_uri are
                   replaced by the local servers; store and sink paths go to the work dir
  metrics.om       OpenMetrics text with explicit timestamps (seconds), ending in `# EOF`
  registry.jsonl   one JSON object per line: {"type":"model"|"version"|"alias", "name",
                   "at" (RFC3339 or epoch s), "version", "alias", "tags", "description"}
  samples/         parquet/CSV feature samples with the configured timestamp column
  reference/       training references (parquet), named by config or version tags
  bundle.json      optional: {"start": epoch s, "end": epoch s, "step": seconds}; without
                   it the span is the metrics' span, starting after one lookback + baseline

Vigil's own metrics: in production Prometheus scrapes Vigil's /metrics (vigil_model_state,
vigil_feature_drift, vigil_kpi_*, vigil_incidents_*, vigil_rollbacks_total, ...), so they are
not in a bundle's metrics.om. `replay()` records them as that scrape would have: after each
cycle and delivery it reads `vigil.metrics.registry` at the replay time t (`_created`
samples skipped, labels job="vigil", instance="replay" added as a scrape would), and at the
end writes `<out stem>.vigil-metrics.om` next to the incidents file (OpenMetrics, loadable
with promtool like metrics.om). Load both into one Prometheus to see the generated
dashboards over the replay.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alerts.sink import JsonlSink
from monitor.clock import ReplayClock
from monitor.config import PolicyConfig, VigilConfig, load_config
from monitor.replay.as_of import AsOfRegistry
from monitor.replay.openmetrics import MetricType, OpenMetricsWriter
from monitor.sources.registry import RegistrySource
from monitor.store.repository import Store
from monitor.vigil import Vigil

log = logging.getLogger("vigil.replay")


@dataclass
class ReplayResult:
    incidents: list[dict[str, Any]]
    timeline: list[tuple[float, str]]  # (time, readable line), in time order
    cycles: int
    out_path: Path
    notifications_path: Path
    vigil_metrics_path: Path  # Vigil's own /metrics over replay time, OpenMetrics


SCRAPE_LABELS = {"job": "vigil", "instance": "replay"}  # what Prometheus' scrape of Vigil adds
_PLAIN_KINDS: dict[str, MetricType] = {"gauge": "gauge", "counter": "counter"}


class MetricsRecorder:
    """Vigil's prometheus-client registry sampled at replay times, written once as OpenMetrics.

    Each `sample(t)` appends one point per series (a series first seen late starts late,
    as it would in a real scrape); `write()` hands whole columns to OpenMetricsWriter.
    """

    def __init__(self, registry: Any, extra_labels: dict[str, str] | None = None) -> None:
        self.registry = registry
        self.extra_labels = dict(SCRAPE_LABELS if extra_labels is None else extra_labels)
        # (family, type, sample name, labels) -> (help, times, values)
        self._plain: dict[tuple[str, str, str, tuple[tuple[str, str], ...]],
                          tuple[str, list[float], list[float]]] = {}
        # (family, labels without le) -> (help, times, [{le: cumulative}], counts, sums)
        self._hist: dict[tuple[str, tuple[tuple[str, str], ...]],
                         tuple[str, list[float], list[dict[float, float]], list[float], list[float]]] = {}

    def sample(self, t: float) -> None:
        for fam in self.registry.collect():
            if fam.type == "histogram":
                self._sample_histogram(fam, t)
            else:
                self._sample_plain(fam, t)

    def _sample_histogram(self, fam: Any, t: float) -> None:
        points: dict[tuple[tuple[str, str], ...], tuple[dict[float, float], list[float]]] = {}
        for s in fam.samples:
            suffix = s.name[len(fam.name):]
            labels = {k: v for k, v in s.labels.items() if k != "le"}
            buckets, count_sum = points.setdefault(tuple(sorted(labels.items())), ({}, [0.0, 0.0]))
            if suffix == "_bucket":
                buckets[float(s.labels["le"])] = s.value
            elif suffix == "_count":
                count_sum[0] = s.value
            elif suffix == "_sum":
                count_sum[1] = s.value
        for labels_key, (buckets, (count, total)) in points.items():
            rec = self._hist.setdefault((fam.name, labels_key), (fam.documentation, [], [], [], []))
            rec[1].append(t)
            rec[2].append(buckets)
            rec[3].append(count)
            rec[4].append(total)

    def _sample_plain(self, fam: Any, t: float) -> None:
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue  # a creation time, not a value anyone graphs
            key = (fam.name, fam.type, s.name, tuple(sorted(s.labels.items())))
            rec = self._plain.get(key)
            if rec is None:
                rec = self._plain[key] = (fam.documentation, [], [])
            rec[1].append(t)
            rec[2].append(s.value)

    def write(self, path: Path) -> int:
        """Write every recorded series; returns the number of samples written."""
        w = OpenMetricsWriter()
        for (_, type_, name, labels), (help_, ts, vals) in self._plain.items():
            # The writer names a counter's family without _total and its samples with it
            # (promtool's rule); other kinds (none today) go in as untyped samples.
            kind = _PLAIN_KINDS.get(type_, "unknown")
            w.add(name, {**self.extra_labels, **dict(labels)}, np.asarray(ts), np.asarray(vals),
                  type=kind, help=help_)
        for (family, labels), (help_, ts, buckets, counts, sums) in self._hist.items():
            bounds = sorted(b for b in set().union(*buckets) if np.isfinite(b))
            cum = np.array([[row.get(b, np.nan) for b in bounds] for row in buckets], dtype=float)
            w.add_histogram(family, {**self.extra_labels, **dict(labels)}, np.asarray(ts), bounds, cum,
                            np.asarray(sums), np.asarray(counts), help=help_)
        w.write(path)
        return w.sample_count


def _incident_records(vigil: Vigil) -> list[dict[str, Any]]:
    out = []
    for row in vigil.store.all_incidents():
        notes = []
        for ob in vigil.store.outbox_for_prefix(f"incident:{row.id}"):
            notes.append({"notifier": ob.notifier, "key": ob.key, "channel": ob.payload.get("channel"),
                          "status": ob.status, "severity": ob.payload.get("severity"),
                          "incident_status": ob.payload.get("status"), "at": ob.created_at,
                          "delivered_at": ob.delivered_at, "error": ob.last_error})
        actions = [a.to_dict() for a in vigil.store.actions(incident_id=row.id)]
        out.append({
            "id": row.id, "model": row.model, "opened_at": row.opened_at, "resolved_at": row.resolved_at,
            "onset": row.onset, "severity": row.severity, "title": row.title, "cold_start": row.cold_start,
            "reasons": row.reasons,
            "causes": [{"kind": c["kind"], "entity": c["entity"], "score": c["score"], "evidence": c["evidence"],
                        "explanation": c["explanation"]} for c in row.causes],
            "findings": [{"kind": f["kind"], "entity": f["entity"], "value": f["value"],
                          "threshold": f["threshold"], "statistic": f["statistic"], "message": f["message"]}
                         for f in row.findings],
            "notifications": notes,
            "actions": actions,
        })
    return out


def build_timeline(vigil: Vigil, start: float, incidents: list[dict[str, Any]]) -> list[tuple[float, str]]:
    lines: list[tuple[float, str]] = []
    for m in vigil.config.models:
        for d in vigil.store.deploys(m.name, since=start):
            prev = f" (was v{d.previous_version})" if d.previous_version else ""
            what = "rolled back to" if d.source == "rollback" else "now serves"
            lines.append((d.at, f"{d.model}: '{d.alias}' {what} v{d.version}{prev}"))
    for inc in incidents:
        top = inc["causes"][0] if inc["causes"] else None
        cause = f"; top cause {top['kind']} {top['entity']} ({top['score']:.0%})" if top else ""
        lines.append((inc["opened_at"], f"incident #{inc['id']} OPEN {inc['severity'].upper()}: {inc['title']}{cause}"))
        for a in inc["actions"]:
            kind = str(a.get("kind") or "rollback").replace("_", " ")
            lines.append((a["at"], f"incident #{inc['id']} {kind} {a['status']}: "
                                   f"v{a['from_version']} -> v{a['to_version']} ({a['reason']})"))
        if inc["resolved_at"]:
            lines.append((inc["resolved_at"], f"incident #{inc['id']} RESOLVED"))
    lines.sort(key=lambda x: x[0])
    return lines


@dataclass(frozen=True)
class ReplaySpan:
    """The replay clock's steps: start, start + step, ... up to end (epoch seconds)."""

    start: float
    end: float
    step: float

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"--to ({self.end}) must not be before --from ({self.start})")
        if self.step <= 0:
            raise ValueError(f"--step must be positive, got {self.step}")

    def times(self) -> list[float]:
        n = int((self.end - self.start) // self.step) + 1
        return [self.start + i * self.step for i in range(n)]


@dataclass(frozen=True)
class ReplayOptions:
    """Where a replay writes, and what it runs against instead of the config's sources."""

    out_path: Path  # incidents, one JSON object per line; the other outputs go next to it
    store_url: str | None = None  # default: SQLite `<out_path stem>.db` next to the incidents
    progress: bool = True  # a tqdm progress bar
    before_cycle: Callable[[float], Any] | None = None  # called with t before each cycle
    registry: Any = None  # a model registry source instead of the config's MLflow
    prometheus: Any = None  # a Prometheus source instead of the config's
    # False: every rollback, canary pull and promotion the replay decides is a dry run. The
    # config's sources are production's registry and serving: replaying history must never
    # move them (`vigil replay --config`). A bundle's throwaway local registry may move.
    act: bool = False


def dry_run_actions(config: VigilConfig) -> VigilConfig:
    """`config` with `policy.rollback.dry_run` set, globally and in each model's policy in
    force: rollbacks and canary actions are then decided, audited and shown, never made."""
    def dry(p: PolicyConfig) -> PolicyConfig:
        return p.model_copy(update={"rollback": p.rollback.model_copy(update={"dry_run": True})})

    models = [m if m.policy is None else m.model_copy(update={"policy": dry(m.policy)}) for m in config.models]
    return config.model_copy(update={"policy": dry(config.policy), "models": models})


def replay(config: VigilConfig, span: ReplaySpan, options: ReplayOptions) -> ReplayResult:
    out_path = Path(options.out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    notifications = out_path.with_name(out_path.stem + ".notifications.jsonl")
    notifications.unlink(missing_ok=True)
    store = Store(options.store_url or f"sqlite:///{out_path.with_suffix('.db').resolve()}")
    clock = ReplayClock(span.start)
    config = config if options.act else dry_run_actions(config)
    # The configured registry holds today's state: read as of the replay clock (monitor/replay/as_of.py).
    # A bundle's (`act`) is filled as the clock passes, so it is its past already.
    own_registry = None if options.registry is not None else RegistrySource(config.sources.mlflow)
    as_of = None if options.act else AsOfRegistry(options.registry or own_registry, clock)
    # Replays never page anyone: notifications go to a local JSON-lines sink.
    vigil = Vigil(config, clock=clock, store=store, registry=as_of or options.registry or own_registry,
                  prometheus=options.prometheus, notifiers={"sink": JsonlSink(notifications, console=False)})
    vigil_metrics = out_path.with_name(out_path.stem + ".vigil-metrics.om")
    recorder = MetricsRecorder(vigil.metrics.registry)
    times = span.times()
    for t in _progress(times, options.progress):
        clock.set(t)
        if options.before_cycle is not None:
            options.before_cycle(t)
        vigil.run_all(t)
        vigil.deliver(t)
        recorder.sample(t)  # what a scrape of /metrics right after this cycle would have seen
    recorder.write(vigil_metrics)
    incidents = _incident_records(vigil)
    with open(out_path, "w") as fh:
        for inc in incidents:
            fh.write(json.dumps(inc) + "\n")
    timeline = build_timeline(vigil, span.start, incidents)
    if as_of is not None:
        timeline = sorted([(span.start, line) for line in as_of.notes()] + timeline, key=lambda x: x[0])
    if own_registry is not None:
        own_registry.close()
    store.close()
    return ReplayResult(incidents, timeline, len(times), out_path, notifications, vigil_metrics)


def _progress(times: list[float], show: bool) -> Iterable[float]:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return times
    return tqdm(times, desc="replay", unit="cycle", disable=not show, leave=False)


def _om_span(path: Path) -> tuple[float, float]:
    """First and last sample time in an OpenMetrics file (timestamps are the last field)."""
    lo, hi = float("inf"), float("-inf")
    num = re.compile(r"\s(\d+(?:\.\d+)?)\s*$")
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            m = num.search(line)
            if m:
                v = float(m.group(1))
                lo, hi = min(lo, v), max(hi, v)
    if lo == float("inf"):
        raise ValueError(f"{path}: no timestamped samples")
    return lo, hi


def bundle_span(bundle: Path, config: VigilConfig) -> tuple[float, float, float]:
    meta = bundle / "bundle.json"
    if meta.exists():
        d = json.loads(meta.read_text())
        return float(d["start"]), float(d["end"]), float(d.get("step", config.schedule.interval))
    lo, hi = _om_span(bundle / "metrics.om")
    return lo + config.schedule.lookback + config.schedule.baseline, hi, config.schedule.interval


def _clear_earlier_run(workdir: Path) -> None:
    """What an earlier replay left in its workdir goes: its store already holds the
    incidents and delivered messages (a re-run would send nothing and write no
    notifications), its registry the aliases the rollback moved."""
    for name in ("vigil-replay.db", "mlflow.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(workdir / "prometheus", ignore_errors=True)


def run_bundle(bundle: Path, out_path: Path, *, workdir: Path | None = None, progress: bool = True,
               step: float | None = None) -> ReplayResult:
    from monitor.replay.local_mlflow import sqlite_tracking_uri
    from monitor.replay.local_prometheus import LocalPrometheus
    from monitor.replay.registry_bundle import RegistryTimeline, read_registry_jsonl
    from monitor.sources.registry import RegistrySource

    bundle = Path(bundle).resolve()
    for required in ("vigil.yaml", "metrics.om", "registry.jsonl"):
        if not (bundle / required).exists():
            raise FileNotFoundError(f"bundle {bundle}: missing {required} (see `vigil replay --help`)")
    base = load_config(bundle / "vigil.yaml")
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-replay-")))
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        _clear_earlier_run(workdir)
        prom = stack.enter_context(LocalPrometheus(bundle / "metrics.om", workdir / "prometheus"))
        prom_url = prom.start()
        mlflow_uri = sqlite_tracking_uri(workdir / "mlflow.db")
        raw = base.model_dump()
        raw["sources"]["prometheus"]["url"] = prom_url
        raw["sources"]["mlflow"]["tracking_uri"] = mlflow_uri
        raw["base_dir"] = str(bundle)
        raw["grafana"]["url"] = None
        for m in raw["models"]:
            # A rollback moves the bundle's own registry; a serving layer outside it (KServe,
            # Argo, a deploy webhook: production's, in a bundle made from a real vigil.yaml)
            # is never the replay's to move. A second alias lives in the local registry: kept.
            if m.get("serving") and m["serving"].get("kind") != "mlflow_alias":
                m["serving"] = None
        config = VigilConfig.model_validate(raw)
        registry = RegistrySource(config.sources.mlflow)
        timeline = RegistryTimeline(read_registry_jsonl(bundle / "registry.jsonl"), registry)
        start, end, default_step = bundle_span(bundle, config)
        options = ReplayOptions(out_path=out_path, store_url=f"sqlite:///{(workdir / 'vigil-replay.db').resolve()}",
                                progress=progress, before_cycle=timeline.apply_until, registry=registry,
                                act=True)  # the bundle's own SQLite registry, made for this replay
        return replay(config, ReplaySpan(start, end, step or default_step), options)
