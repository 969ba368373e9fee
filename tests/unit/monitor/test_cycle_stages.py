"""Each stage of a cycle alone (monitor/cycle/): gather, detect, correlate, plan, apply,
act and deliver, with stand-ins for the sources and a SQLite store in a temp folder."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from alerts.lifecycle import LifecycleDecision, Step
from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.pipeline import AlertPlan
from alerts.policy import RollbackVerdict, Severity, TierDecision
from alerts.routing import TIMELINE_ROUTE, NotifierRegistry
from correlators.causes import CorrelationSettings
from detectors.anomaly import AnomalyTuning
from detectors.records import DeployEvent, Finding, FindingKind, LogRecord, Series
from monitor.cycle.actions import Operator
from monitor.cycle.anomaly_state import anomaly_key, legacy_anomaly_key
from monitor.cycle.apply import StateUpdate, apply_plan
from monitor.cycle.correlate import correlate
from monitor.cycle.deliver import OutboxSender
from monitor.cycle.detect import DetectRequest, detect
from monitor.cycle.gather import GatherRequest, Sources, gather
from monitor.cycle.health import SourceHealth
from monitor.cycle.logs_traces import LogTraceSources, pull_logs_traces
from monitor.cycle.messages import Links, OutboxWriter
from monitor.cycle.plan import CycleStart, next_streaks, read_cycle_start, read_history
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.rollback_intents import RollbackRunner
from monitor.cycle.samples import SampleReader
from monitor.executors.build import alias_executor
from monitor.metrics import VigilMetrics
from monitor.sources.errors import SourceStatus, SourceUnavailable
from monitor.store.repository import Store
from monitor.types import Detection, MetricSignal, RawSignals, Window
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    OWNER,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    model_config,
    serving_registry,
    step_curve,
)
from tests.synthetic_traces import synthetic_traces

W = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)


@pytest.fixture
def cfg(tmp_path: Any) -> Any:
    return make_config(tmp_path)


def sources(cfg: Any, prometheus: Any) -> Sources:
    store = Store(cfg.store.url)
    health = SourceHealth.for_sources({"prometheus": "http://127.0.0.1:9"}, VigilMetrics(), lambda: T0)
    samples = SampleReader(cfg, store)
    refs = ReferenceChooser(cfg, store, serving_registry(), samples, lambda: T0)
    return Sources(prometheus, health, samples, refs, LogTraceSources(), 60.0)


# ----------------------------------------------------------------------------- gather
def test_gather_reads_every_kpi_and_slo_and_names_what_it_could_not(cfg: Any) -> None:
    prom = StubPrometheus({CTR_QUERY: lambda ts: np.full(len(ts), 0.05)})  # the SLO query matches nothing
    raw = gather(sources(cfg, prom), GatherRequest(cfg.model(MODEL), W, "1", None))
    assert [s.name for s in raw.kpis] == ["ctr"] and raw.slos == []
    [gap] = raw.gaps.findings
    assert gap.kind == FindingKind.NO_DATA and gap.entity == "p99_latency" and raw.gaps.blind == [
        "p99_latency: no series"]
    assert prom.calls[0][1] == W.baseline_start  # KPIs are read with their baseline hour


def test_gather_marks_prometheus_down_and_never_returns_an_all_clear(cfg: Any) -> None:
    prom = StubPrometheus()
    prom.down = True
    src = sources(cfg, prom)
    raw = gather(src, GatherRequest(cfg.model(MODEL), W, "1", None))
    assert src.health.is_down("prometheus")
    assert {f.entity for f in raw.gaps.findings} == {"ctr", "p99_latency"}
    assert all("Prometheus unavailable" in f.message for f in raw.gaps.findings)


def test_gather_fetches_a_day_of_history_only_for_series_without_anomaly_state(cfg: Any) -> None:
    prom = StubPrometheus({CTR_QUERY: lambda ts: np.full(len(ts), 0.05), P99_QUERY: lambda ts: np.full(len(ts), 0.1)})
    series = Series("ctr", {}, np.array([T0]), np.array([0.05]))
    for key in (anomaly_key("ctr", series, f"  {CTR_QUERY}\n"), legacy_anomaly_key("ctr", series)):
        raw = gather(sources(cfg, prom), GatherRequest(cfg.model(MODEL), W, "1", {key}))
        by_name = {s.name: s for s in raw.kpis + raw.slos}
        assert by_name["ctr"].history is None  # its state is kept (whitespace aside), or one from before
        history = by_name["p99_latency"].history
        assert history is not None and history.timestamps[0] <= T0 - 86400 + 60


class _BaselineFails:
    """A Loki and a Tempo that answer for the window and fail for the window before it."""

    def query_logs(self, query: str, start: float, end: float) -> list[LogRecord]:
        self._fail_before_window("loki", start)
        return [LogRecord(W.t - 60, "api", "ERROR upstream reset", level="ERROR")]

    def search(self, query: str, start: float, end: float, limit: int) -> list[Any]:
        self._fail_before_window("tempo", start)
        return [SimpleNamespace(trace_id="t1")]

    def trace(self, trace_id: str, start: float, end: float) -> list[Any]:
        return synthetic_traces(1, W.t - 60)

    @staticmethod
    def _fail_before_window(source: str, start: float) -> None:
        if start < W.start:
            raise SourceUnavailable(source, "http://127.0.0.1:9", "503 on the baseline read")


def test_a_source_whose_baseline_read_fails_is_blind_not_scored_against_nothing(cfg: Any) -> None:
    """Scored against an empty baseline every line and call would be new (and that baseline
    stored for the next cycles): the source is reported blind for the cycle instead."""
    fake = _BaselineFails()
    health = SourceHealth.for_sources({"loki": "http://l", "tempo": "http://t"}, VigilMetrics(), lambda: T0)
    raw = RawSignals()
    model = cfg.models[0].model_copy(update={"services": ["api"]})
    pull_logs_traces(LogTraceSources(loki=fake, tempo=fake), health, model, W, raw, with_baseline=True)
    assert raw.logs_current == [] and raw.spans_current == [] and raw.logs_baseline == raw.spans_baseline == []
    assert [line.split(":")[0] for line in raw.gaps.blind] == ["tempo", "loki"]
    assert {n: health.states[n].status for n in ("loki", "tempo")} == {
        "loki": SourceStatus.DOWN, "tempo": SourceStatus.DOWN}
    ok = RawSignals()  # without a refit due, the window alone is read and scored
    pull_logs_traces(LogTraceSources(loki=fake, tempo=fake), health, model, W, ok, with_baseline=False)
    assert ok.logs_current and ok.spans_current and ok.baseline_window is None



class _TempoBaselineFails(_BaselineFails):
    """Loki answers both reads; Tempo only the window's."""

    def query_logs(self, query: str, start: float, end: float) -> list[LogRecord]:
        return [LogRecord(max(start, W.t - 60), "api", "INFO served", level="INFO")]


def test_the_log_baseline_is_not_refitted_without_the_spans_it_pairs_with(cfg: Any) -> None:
    """When only Tempo's refresh fails, a log baseline refitted without spans would be
    scored against a window with them, stored, and frozen by an incident opened next: the
    stored log baseline stands in too, and the causes say why. With none stored, the
    logs are refitted as before."""
    from detectors.logs import LogDetector, LogReference
    from detectors.traces import TraceDetector
    from monitor.cycle.detect_logs_traces import LOGS_KEY, TRACES_KEY, can_fall_back, detect_logs_traces

    before = (W.start - 900, W.start - 300)
    spans = synthetic_traces(40, W.start - 600)
    lines = [LogRecord(W.start - 500, "api", "INFO served", level="INFO")]
    stored = {TRACES_KEY: {"fitted_on": list(before), "state": TraceDetector().fit(spans, *before).to_dict()},
              LOGS_KEY: {"fitted_on": list(before),
                         "state": LogDetector().fit(LogReference(lines, spans), *before).to_dict()}}
    model = cfg.models[0].model_copy(update={"services": ["api"]})
    for kept, expected in ((stored, set()), ({TRACES_KEY: stored[TRACES_KEY]}, {LOGS_KEY})):
        raw = RawSignals()
        health = SourceHealth.for_sources({"loki": "http://l", "tempo": "http://t"}, VigilMetrics(), lambda: T0)
        fake = _TempoBaselineFails()
        pull_logs_traces(LogTraceSources(loki=fake, tempo=fake), health, model, W, raw, with_baseline=True,
                         can_fall_back=lambda source, kept=kept: can_fall_back(kept, W.start, source))
        assert raw.spans_current and raw.logs_current
        # held: the log refresh is not even read; with none stored it is read and refitted
        assert (raw.logs_baseline == []) is (not expected)
        assert set(raw.baseline_unread) == ({"traces"} if expected else {"traces", "logs"})
        result = detect_logs_traces(raw, MODEL, W, kept)
        assert set(result.state) == expected
        assert result.evidence is not None
        said = [line for line in result.evidence.lacking if line.startswith("stale logs baseline")]
        assert said == ([] if expected else
                        ["stale logs baseline: not refitted while the traces baseline it pairs with is unread, "
                         "the stored one ends 5 min before the window"])


def test_refresh_failure_counters_start_at_zero_for_the_sources_that_refresh() -> None:
    """`rate()` misses a counter's first increment when its series appears with it."""
    health = SourceHealth.for_sources({"prometheus": "http://p", "loki": "http://l", "tempo": None},
                                      VigilMetrics(), lambda: T0)
    value = health.metrics.registry.get_sample_value
    assert value("vigil_baseline_refresh_failures_total", {"source": "loki"}) == 0
    assert value("vigil_baseline_refresh_failures_total", {"source": "tempo"}) is None  # not configured
    assert value("vigil_baseline_refresh_failures_total", {"source": "prometheus"}) is None


def test_a_failed_baseline_refresh_falls_back_on_the_stored_baseline(cfg: Any) -> None:
    """A flaky Loki or Tempo that fails only the refresh read still has its window scored,
    against the baseline stored before, and that baseline is kept, not replaced by nothing;
    the source's health and every cause say so. A source without one is blind as before."""
    from detectors.logs import LogDetector, LogReference
    from detectors.traces import TraceDetector
    from monitor.cycle.detect_logs_traces import LOGS_KEY, TRACES_KEY, can_fall_back, detect_logs_traces

    spans = synthetic_traces(40, W.start - 600)
    stored = {TRACES_KEY: {"fitted_on": [W.start - 900, W.start - 300], "covered": 39.0,
                           "state": TraceDetector().fit(spans, W.start - 900, W.start - 300).to_dict()}}
    assert can_fall_back(stored, W.start, "tempo") and not can_fall_back(stored, W.start, "loki")
    fake = _BaselineFails()
    health = SourceHealth.for_sources({"loki": "http://l", "tempo": "http://t"}, VigilMetrics(), lambda: T0)
    raw = RawSignals()
    model = cfg.models[0].model_copy(update={"services": ["api"]})
    pull_logs_traces(LogTraceSources(loki=fake, tempo=fake), health, model, W, raw, with_baseline=True,
                     can_fall_back=lambda source: can_fall_back(stored, W.start, source))
    assert raw.spans_current and raw.spans_baseline == [] and raw.baseline_unread == {"traces": "its refresh failed"}
    assert raw.logs_current == [] and [line.split(":")[0] for line in raw.gaps.blind] == ["loki"]
    assert health.states["tempo"].status is SourceStatus.UP
    assert "baseline refresh failed" in health.states["tempo"].detail
    assert health.metrics.registry.get_sample_value("vigil_baseline_refresh_failures_total", {"source": "tempo"}) == 1
    result = detect_logs_traces(raw, MODEL, W, stored)
    assert TRACES_KEY not in result.state  # the stored baseline stays as it was
    assert result.evidence is not None and ("api", "preprocess") in result.evidence.graph.edges
    assert ("stale traces baseline: its refresh failed, the stored one ends 5 min before the window"
            in result.evidence.lacking)

    empty_logs = LogDetector().fit(LogReference([]), W.start - 900, W.start).to_dict()
    logs_too = {**stored, LOGS_KEY: {"fitted_on": [W.start - 900, W.start], "state": empty_logs}}
    assert not can_fall_back(logs_too, W.start, "loki")  # an empty baseline cannot stand in
    assert not can_fall_back(stored, W.start + 86_400, "tempo")  # nor one over a day old
    lines = [LogRecord(W.start - 500, "api", "INFO served", level="INFO")]
    logs_too[LOGS_KEY]["state"] = LogDetector().fit(LogReference(lines), W.start - 900, W.start).to_dict()
    both = RawSignals()
    pull_logs_traces(LogTraceSources(loki=fake, tempo=fake), health, model, W, both, with_baseline=True,
                     can_fall_back=lambda source: can_fall_back(logs_too, W.start, source))
    assert both.logs_current and set(both.baseline_unread) == {"traces", "logs"} and both.gaps.blind == []
    assert detect_logs_traces(both, MODEL, W, logs_too).state == {}

    asked: list[str] = []  # a refresh that works never decodes the stored baselines to ask
    healthy = RawSignals()
    pull_logs_traces(LogTraceSources(loki=_BaselineAnswers(), tempo=_BaselineAnswers()), health, model, W, healthy,
                     with_baseline=True, can_fall_back=lambda source: bool(asked.append(source)))
    assert asked == [] and healthy.spans_baseline and healthy.baseline_unread == {}


class _BaselineAnswers(_BaselineFails):
    @staticmethod
    def _fail_before_window(source: str, start: float) -> None:
        return None


# ----------------------------------------------------------------------------- detect
def detect_request(cfg: Any, state: dict[str, Any] | None = None) -> DetectRequest:
    m = cfg.model(MODEL)
    return DetectRequest(m, cfg.policy_for(m), W, 60.0, 60.0, AnomalyTuning(), CycleStart(state or {}))


def kpi_signal(bad_from: float) -> MetricSignal:
    ts = np.arange(W.baseline_start, W.t + 1, 60.0)
    return MetricSignal("ctr", CTR_QUERY, Series("ctr", {}, ts, step_curve(0.05, 0.04, bad_from)(ts)))


def test_detect_finds_a_kpi_drop_and_keeps_each_gap_where_its_signal_stands(cfg: Any) -> None:
    raw = RawSignals(kpis=[kpi_signal(T0 - 900)])
    raw.gaps.add(Finding(kind=FindingKind.NO_DATA, entity="p99_latency", model=MODEL, value=0, threshold=1,
                         window_start=W.start, window_end=W.t, onset=W.t), "p99_latency: no series")
    found = detect(raw, detect_request(cfg))
    assert [(str(f.kind), f.entity) for f in found.findings][:2] == [("kpi_drop", "ctr"), ("no_data", "p99_latency")]
    value, baseline = found.kpi_levels["ctr"]
    assert baseline == pytest.approx(0.05) and value == pytest.approx(0.04)
    assert any(k.startswith("ctr|") for k in found.detector_state)  # the anomaly state goes back to the store


def test_detect_turns_a_detector_bug_into_no_data_for_that_family_only(cfg: Any, monkeypatch: Any) -> None:
    import monitor.cycle.detect as stage

    def broken(*_: Any) -> None:
        raise ZeroDivisionError("a detector bug")

    monkeypatch.setattr(stage, "detect_slos", broken)
    found = detect(RawSignals(kpis=[kpi_signal(T0 - 900)]), detect_request(cfg))
    kinds = {(str(f.kind), f.entity) for f in found.findings}
    assert ("kpi_drop", "ctr") in kinds and ("no_data", "slos") in kinds
    assert found.blind == ["detect_slos: ZeroDivisionError: a detector bug"]


def test_detect_keeps_stored_state_it_did_not_touch(cfg: Any) -> None:
    """A configured signal without data this cycle keeps its state (a legacy one too, until
    a cycle takes it over); one no longer configured, or of a query it no longer has, loses it."""
    ctr = Series("ctr", {}, np.array([T0]), np.array([0.05]))
    live = anomaly_key("ctr", ctr, cfg.model(MODEL).kpis[0].query)
    gone = [anomaly_key("ctr", ctr, "100 * ctr"), "retired|{}", anomaly_key("retired", ctr, "x")]
    stored = {live: {"detector": {}}, "p99_latency|{}": {"detector": {}}, "@logs": {}} | dict.fromkeys(gone, {})
    found = detect(RawSignals(), detect_request(cfg, stored))
    assert found.detector_state == {k: v for k, v in stored.items() if k not in gone} and found.findings == []


# ----------------------------------------------------------------------------- correlate
def finding(kind: FindingKind, entity: str, onset: float, value: float = -12.0) -> Finding:
    return Finding(kind=kind, entity=entity, model=MODEL, value=value, threshold=-5.0, window_start=W.start,
                   window_end=W.t, onset=onset, score=0.9)


def test_correlate_blames_a_deploy_and_tells_the_whole_story_of_an_open_incident() -> None:
    earlier = [finding(FindingKind.PREDICTION_DRIFT, "prediction", T0 - 3600, 0.3)]
    deploy = DeployEvent(MODEL, "champion", "2", "1", T0 - 4000, "registry")
    c = correlate(MODEL, Detection(findings=[finding(FindingKind.KPI_DROP, "ctr", T0 - 900)]), [],
                  CycleStart(earlier_findings=earlier, opened_at=T0 - 3000), [deploy], W, CorrelationSettings())
    assert c.incident is not None and c.content is not None
    assert {f.entity for f in c.incident.findings} == {"ctr"}
    assert {f.entity for f in c.content.findings} == {"ctr", "prediction"}
    assert c.content.top_cause is not None and c.content.top_cause.kind == "deploy"


def test_correlate_with_nothing_wrong_is_no_incident() -> None:
    c = correlate(MODEL, Detection(), [], CycleStart(), [], W, CorrelationSettings())
    assert c.incident is None and c.content is None


def kpi_story() -> Any:
    """A new incident: CTR down 12 %."""
    found = Detection(findings=[finding(FindingKind.KPI_DROP, "ctr", T0 - 900)])
    return correlate(MODEL, found, [], CycleStart(), [], W, CorrelationSettings())


# ----------------------------------------------------------------------------- plan inputs
def test_streaks_count_consecutive_breaches_and_reset() -> None:
    assert next_streaks({"p99": 2, "err": 1}, {"p99": True, "err": False}) == {"p99": 3, "err": 0}


# ----------------------------------------------------------------------------- apply
class Recorder:
    def __init__(self, name: str, route: Any = None) -> None:
        self.name, self.sent = name, []
        if route is not None:
            self.route = route

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        self.sent.append(message)
        return DeliveryResult(DeliveryStatus.DELIVERED)


def open_plan() -> AlertPlan:
    return AlertPlan(tier=TierDecision(Severity.WARNING, ["kpi"], False), digest="d1",
                     lifecycle=LifecycleDecision(Step.OPEN, Severity.WARNING, True, 0), channels=[OWNER])


def writer(store: Store, cfg: Any) -> OutboxWriter:
    notifiers = NotifierRegistry({"slack": Recorder("slack"), "timeline": Recorder("timeline", TIMELINE_ROUTE)})
    return OutboxWriter(store, notifiers, Links.from_config(cfg))


def test_apply_opens_the_incident_with_one_message_per_route_in_one_transaction(cfg: Any) -> None:
    store = Store(cfg.store.url)
    story = kpi_story()
    applied = apply_plan(store, writer(store, cfg), cfg.model(MODEL), open_plan(), story.content,
                         StateUpdate({"p99": 1}, {"ctr|{}": {"x": 1}}, T0))
    assert applied.opened and applied.status == "open" and applied.severity == "warning"
    keys = sorted((r.notifier, r.key) for r in store.outbox_for_prefix("incident"))
    key = f"incident:{applied.incident_id}"
    assert keys == [("slack", f"{key}:{OWNER}"), ("timeline", key)]
    start = read_cycle_start(store, MODEL)
    assert start.detector_state == {"ctr|{}": {"x": 1}} and start.opened_at == T0
    history = read_history(store, MODEL, T0 + 60, {"p99": True})
    assert history.slo_streaks == {"p99": 2} and history.open_incident is not None


def test_apply_with_a_failing_write_leaves_nothing_behind(cfg: Any, monkeypatch: Any) -> None:
    store = Store(cfg.store.url)
    out = writer(store, cfg)
    story = kpi_story()

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(out, "incident", broken)
    with pytest.raises(RuntimeError):
        apply_plan(store, out, cfg.model(MODEL), open_plan(), story.content, StateUpdate({}, {"k": 1}, T0))
    assert store.incidents(model=MODEL) == [] and store.outbox_counts() == {}
    assert read_cycle_start(store, MODEL).detector_state == {}


def test_an_edit_that_tells_no_one_does_not_put_off_the_repeat_reminder(cfg: Any) -> None:
    """repeat_interval reminds people of an unacknowledged incident because an edit of its
    message notifies no one. Yet every content change (a new finding: an edit, no reply)
    restarted the reminder's clock: an incident whose story grew every few hours was never
    reminded at all. The clock now runs from the last message that told someone."""
    from alerts.lifecycle import LifecycleSettings, decide

    store = Store(cfg.store.url)
    out, m, story = writer(store, cfg), cfg.model(MODEL), kpi_story()
    warn = TierDecision(Severity.WARNING, ["kpi"], False)
    apply_plan(store, out, m, open_plan(), story.content, StateUpdate({}, {}, T0))
    changed = AlertPlan(tier=warn, digest="d2", channels=[OWNER],
                        lifecycle=LifecycleDecision(Step.UPDATE, Severity.WARNING, True, 0, "changed"))
    apply_plan(store, out, m, changed, story.content, StateUpdate({}, {}, T0 + 3 * 3600))
    assert len(store.outbox_for_prefix(f"incident:1:{OWNER}")) == 2  # the message was edited
    now = T0 + 4 * 3600
    seen = read_history(store, MODEL, now, {}).open_incident
    d = decide(seen, warn, digest="d2", quiet_cycles=0, data_complete=True, now=now, settings=LifecycleSettings())
    assert d.step == Step.REPEAT, (d, seen)


def test_the_cold_start_banner_goes_once_the_model_has_warmed_up(cfg: Any) -> None:
    """Opened in cold start (drift capped at warning, the message says so), the incident is
    still open when the cold start ends and its drift with a KPI drop escalates it: the
    critical's message must not go on saying the drift "does not page on its own"."""
    store = Store(cfg.store.url)
    out, m, story = writer(store, cfg), cfg.model(MODEL), kpi_story()
    cold = AlertPlan(tier=TierDecision(Severity.WARNING, ["drift [cold start: capped at warning]"], True),
                     digest="d1", channels=[OWNER], lifecycle=LifecycleDecision(Step.OPEN, Severity.WARNING, True, 0))
    apply_plan(store, out, m, cold, story.content, StateUpdate({}, {}, T0))
    assert store.incidents()[0].cold_start
    warm = AlertPlan(tier=TierDecision(Severity.CRITICAL, ["drift with KPI"], False), digest="d2", channels=[OWNER],
                     lifecycle=LifecycleDecision(Step.UPDATE, Severity.CRITICAL, True, 0, "escalated"))
    apply_plan(store, out, m, warm, story.content, StateUpdate({}, {}, T0 + 7 * 86400))
    (row,) = store.incidents()
    last = [r for r in store.outbox_for_prefix(f"incident:{row.id}:{OWNER}") if r.kind == MessageKind.INCIDENT][-1]
    assert not row.cold_start and not last.payload["cold_start"], \
        "the critical's message still shows the cold-start banner"


# ----------------------------------------------------------------------------- act
def test_a_refused_rollback_is_recorded_and_audited_once(cfg: Any) -> None:
    store = Store(cfg.store.url)
    story = kpi_story()
    incident = apply_plan(store, writer(store, cfg), cfg.model(MODEL), open_plan(), story.content,
                          StateUpdate({}, {}, T0)).incident_id
    assert incident is not None
    out, metrics = writer(store, cfg), VigilMetrics()
    registry = serving_registry()
    runner = RollbackRunner(store, lambda m: [alias_executor(registry, m.alias)], out, metrics)
    op = Operator(cfg, store, out, metrics, runner)
    plan = AlertPlan(lifecycle=LifecycleDecision(Step.UPDATE, Severity.CRITICAL, True, 0),
                     rollback=RollbackVerdict(False, False, "disabled by policy", "1"))
    for t in (T0, T0 + 60):
        assert op.follow_plan(cfg.model(MODEL), incident, plan, t) is None
    [action] = store.actions(model=MODEL)
    assert (action.status, action.reason, action.to_version) == ("refused", "disabled by policy", "1")
    assert [e.action for e in store.audit_entries()] == ["rollback.refused"]


# ----------------------------------------------------------------------------- deliver
class Raising:
    name = "slack"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        raise ConnectionError("boom")


def test_the_sender_keeps_a_message_whose_notifier_raises_or_is_missing(cfg: Any) -> None:
    store = Store(cfg.store.url)
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"x": 1}, T0)
        store.enqueue(s, "pagerduty", MessageKind.INCIDENT, "incident:1", {"x": 1}, T0)
    sender = OutboxSender(store, {"slack": Raising()}, VigilMetrics())
    assert sender.deliver_due(T0) == 0
    rows = {r.notifier: r for r in store.outbox_for_prefix("incident")}
    # A notifier that raised may have sent before it raised: the row stays `sending`, so
    # the next attempt looks for the message before sending it again.
    assert rows["slack"].status == "sending" and "ConnectionError: boom" in (rows["slack"].last_error or "")
    assert rows["pagerduty"].status == "pending" and "not configured" in (rows["pagerduty"].last_error or "")
    assert rows["slack"].next_attempt_at > T0  # backed off, not hammered


def test_log_and_trace_baselines_are_refitted_only_while_healthy_or_missing() -> None:
    from detectors.logs import LogDetector, LogReference
    from monitor.cycle.detect_logs_traces import LOGS_KEY, refit_needed

    stored = {LOGS_KEY: {"fitted_on": [0, 1], "state": LogDetector().fit(LogReference([]), 0, 1).to_dict()}}
    assert refit_needed(stored, incident_open=False, logs=True, traces=False)  # healthy: follow the system
    assert not refit_needed(stored, incident_open=True, logs=True, traces=False)  # open: frozen before onset
    assert refit_needed(stored, incident_open=True, logs=True, traces=True)  # no trace baseline yet
    assert refit_needed({LOGS_KEY: {"state": {"garbage": 1}}}, incident_open=True, logs=True, traces=False)


def test_a_kpi_and_an_slo_of_one_name_both_keep_their_gap_and_no_gap_is_dropped(cfg: Any) -> None:
    def gap(entity: str) -> Finding:
        return Finding(kind=FindingKind.NO_DATA, entity=entity, model=MODEL, value=0, threshold=1,
                       window_start=W.start, window_end=W.t, onset=W.t)

    m = cfg.model(MODEL).model_copy(update={"slos": [cfg.model(MODEL).slos[0].model_copy(update={"name": "ctr"})]})
    raw = RawSignals()
    for entity in ("ctr", "ctr", "something unforeseen"):
        raw.gaps.add(gap(entity), f"{entity}: no series")
    found = detect(raw, DetectRequest(m, cfg.policy_for(m), W, 60.0, 60.0, AnomalyTuning(), CycleStart()))
    assert [f.entity for f in found.findings] == ["ctr", "ctr", "something unforeseen"]


def test_a_kpi_drop_message_links_to_the_kpis_panel_around_the_onset(tmp_path: Any) -> None:
    from urllib.parse import parse_qs, urlsplit

    from dashboards.builder import _walk
    from dashboards.model_dashboard import build_model_dashboard
    from monitor.grafana.specs import dashboard_specs

    kpis = [{"name": "conversions", "query": "conv_rate"}, {"name": "ctr", "query": CTR_QUERY}]
    cfg = make_config(tmp_path, grafana={"url": "http://grafana:3000"}, models=[model_config(kpis=kpis)])
    store = Store(cfg.store.url)
    story = kpi_story()  # CTR down: the top finding is a kpi_drop on "ctr"
    apply_plan(store, writer(store, cfg), cfg.model(MODEL), open_plan(), story.content, StateUpdate({}, {}, T0))
    [msg] = [r for r in store.outbox_for_prefix("incident") if r.notifier == "slack"]
    url = urlsplit(msg.payload["links"]["grafana"])
    q = parse_qs(url.query)
    assert url.path == f"/d/vigil-{MODEL}" and int(q["from"][0]) < (T0 - 900) * 1000 < int(q["to"][0])
    spec = dashboard_specs(cfg)
    built = build_model_dashboard(spec.datasources, spec.models[0])  # as `vigil dashboards` provisions it
    [panel] = [p for p in _walk(built["panels"]) if p["id"] == int(q["viewPanel"][0])]
    assert panel["title"] == "KPI: ctr"
