"""Metric anomalies in the daemon's cycle: a noisy seasonal KPI stays quiet, a drop is
flagged in the bad direction only, detector state survives a restart, and a ratio told its
volume is judged in the band of its traffic."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import pytest

from detectors.anomaly import OnlineAnomalyDetector
from detectors.records import Direction, FindingKind
from monitor.config import ConfigError
from monitor.cycle import gather
from monitor.cycle.prefetch import ModelPlan, planned_ranges
from monitor.sources.errors import QueryError
from monitor.store.repository import Store
from monitor.types import Window
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil, model_config

rng = np.random.default_rng(3)


def ctr(drop_from: float | None = None, rise_from: float | None = None):
    def curve(ts: np.ndarray) -> np.ndarray:
        day = np.sin(2 * np.pi * ts / 86400.0)
        noise = np.random.default_rng(ts.astype(np.int64) % 9973).normal(0, 0.0003, len(ts))
        v = 0.05 + 0.004 * day + noise
        if drop_from is not None:
            v = np.where(ts >= drop_from, v * 0.85, v)
        if rise_from is not None:
            v = np.where(ts >= rise_from, v * 1.15, v)
        return v
    return curve


def flat(ts: np.ndarray) -> np.ndarray:
    return np.full(len(ts), 0.1)


def cycles(vigil, times):
    return [vigil.run_cycle(MODEL, t) for t in times]


def anomalies(report):
    return [f for f in report.findings if f.kind == FindingKind.METRIC_ANOMALY]


def test_quiet_seasonal_kpi_raises_nothing_then_a_drop_is_flagged(tmp_path):
    prom = StubPrometheus({CTR_QUERY: ctr(drop_from=T0 + 3 * 3600), P99_QUERY: flat})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    quiet = cycles(vigil, [T0 + i * 600 for i in range(18)])  # three quiet hours
    assert not any(anomalies(r) for r in quiet)
    (f,) = [a for a in anomalies(vigil.run_cycle(MODEL, T0 + 3 * 3600 + 300)) if a.entity.startswith("ctr")]
    assert f.direction == Direction.DOWN and f.value < f.baseline
    assert T0 + 3 * 3600 <= f.onset <= T0 + 3 * 3600 + 300
    lo, hi = f.evidence["expected_band"]
    assert lo < f.baseline < hi and f.value < lo


def test_a_rise_of_a_kpi_that_only_hurts_when_it_drops_is_not_an_anomaly(tmp_path):
    prom = StubPrometheus({CTR_QUERY: ctr(rise_from=T0 + 3600), P99_QUERY: flat})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    reports = cycles(vigil, [T0 + i * 600 for i in range(12)])
    assert not any(a.entity.startswith("ctr") for r in reports for a in anomalies(r))


def test_detector_state_survives_a_restart(tmp_path):
    cfg = make_config(tmp_path)
    prom = StubPrometheus({CTR_QUERY: ctr(), P99_QUERY: flat})
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    vigil.run_cycle(MODEL, T0)
    warmups = [c for c in prom.calls if c[2] - c[1] >= 86400]
    assert {q for q, *_ in warmups} == {CTR_QUERY, P99_QUERY}  # first sight: a day of history
    vigil.store.close()

    prom2 = StubPrometheus({CTR_QUERY: ctr(), P99_QUERY: flat})
    restarted = make_vigil(cfg, prometheus=prom2, notifiers={})
    restarted.run_cycle(MODEL, T0 + 60)
    assert not [c for c in prom2.calls if c[2] - c[1] >= 86400]  # no cold start after a restart
    store = Store(cfg.store.url)
    with store.tx() as s:
        state = store.detector_state(s, MODEL)
    assert any(k.startswith("ctr|") for k in state)


def test_with_a_resolution_the_daemon_judges_bin_means_and_says_so(tmp_path):
    prom = StubPrometheus({CTR_QUERY: ctr(drop_from=T0 + 3 * 3600), P99_QUERY: flat})
    cfg = make_config(tmp_path, policy={"anomaly_resolution": "5m"})
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    quiet = cycles(vigil, [T0 + i * 600 for i in range(18)])
    assert not any(anomalies(r) for r in quiet)
    mid_bin = T0 + 3 * 3600 + 120  # the drop's first bin is not complete yet: nothing to judge
    assert not [a for a in anomalies(vigil.run_cycle(MODEL, mid_bin)) if a.entity.startswith("ctr")]
    (f,) = [a for a in anomalies(vigil.run_cycle(MODEL, T0 + 3 * 3600 + 600)) if a.entity.startswith("ctr")]
    assert f.direction == Direction.DOWN and "(mean of 5 min)" in f.message
    assert f.onset == T0 + 3 * 3600  # the start of the bin the drop began in


def test_series_queried_at_the_resolution_or_coarser_are_scored_point_by_point(tmp_path):
    prom = StubPrometheus({CTR_QUERY: ctr(drop_from=T0 + 3 * 3600), P99_QUERY: flat}, step=300.0)
    cfg = make_config(tmp_path, sources={"prometheus": {"url": "http://127.0.0.1:9", "step": "5m"}})
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    cycles(vigil, [T0 + i * 600 for i in range(18)])
    (f,) = [a for a in anomalies(vigil.run_cycle(MODEL, T0 + 3 * 3600 + 300)) if a.entity.startswith("ctr")]
    assert "mean of" not in f.message and f.evidence["resolution_s"] is None


def test_the_default_resolution_shrinks_to_fit_a_short_window(tmp_path):
    """lookback 5m, interval 1m: a 5-minute bin open at one cycle would fall out of the next
    cycle's window, so the default judges 4-minute means (a setting written out is refused)."""
    prom = StubPrometheus({CTR_QUERY: ctr(drop_from=T0 + 3 * 3600), P99_QUERY: flat})
    cfg = make_config(tmp_path, schedule={"interval": "60s", "lookback": "5m", "baseline": "1h"})
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    found = [a for r in cycles(vigil, [T0 + 3 * 3600 - 600 + 60 * i for i in range(20)]) for a in anomalies(r)
             if a.entity.startswith("ctr")]
    assert found and all("(mean of 4 min)" in a.message for a in found)
    assert found[0].onset == T0 + 3 * 3600  # 240 s bins are aligned to the clock too


ERR_QUERY = 'sum(rate(errors_total{model="recommender"}[5m])) / sum(rate(requests_total{model="recommender"}[5m]))'
VOLUME_QUERY = 'sum(rate(requests_total{model="recommender"}[5m]))'


def requests_per_s(ts: np.ndarray) -> np.ndarray:
    return (200 + 150 * np.sin(2 * np.pi * ts / 86400.0)) / 300.0  # a daily cycle, busiest in the morning


def error_ratio(burst_from: float) -> Callable[[np.ndarray], np.ndarray]:
    """1 % of the last five minutes' requests fail (binomial noise), +2 points for 15 minutes."""
    def curve(ts: np.ndarray) -> np.ndarray:
        n = np.round(requests_per_s(ts) * 300).astype(int)
        failed = np.array([np.random.default_rng(int(t) // 60).binomial(k, 0.01) for t, k in zip(ts, n, strict=True)])
        return failed / n + np.where((ts >= burst_from) & (ts < burst_from + 900), 0.02, 0.0)
    return curve


class RejectingPrometheus(StubPrometheus):
    def query_range(self, query, start, end, step=None, *, name=None):
        if query == VOLUME_QUERY:
            self.calls.append((query, start, end))
            raise QueryError("prometheus", query, "parse error: unexpected character")
        return super().query_range(query, start, end, step, name=name)


def _errors_slo(tmp_path, volume_query: str | None, prom: StubPrometheus, **sections):
    slo = {"name": "errors", "query": ERR_QUERY, "threshold": 0.5}
    if volume_query:
        slo["volume_query"] = volume_query
    tmp_path.mkdir(exist_ok=True)
    cfg = make_config(tmp_path, models=[model_config(slos=[slo])], **sections)
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    burst = T0 + 3600
    reports = cycles(vigil, [burst - 1800 + 60 * i for i in range(60)])
    assert not [f for r in reports for f in r.findings if f.kind == FindingKind.NO_DATA]
    assert not [b for r in reports for b in r.blind]
    return reports, [a for r in reports for a in anomalies(r) if a.entity.startswith("errors")]


def test_a_ratio_told_its_volume_is_judged_in_the_band_of_its_traffic(tmp_path):
    curves = {CTR_QUERY: ctr(), ERR_QUERY: error_ratio(T0 + 3600)}
    _, plain = _errors_slo(tmp_path / "plain", None, StubPrometheus(curves))
    prom = StubPrometheus({**curves, VOLUME_QUERY: requests_per_s})
    _, told = _errors_slo(tmp_path / "told", VOLUME_QUERY, prom)
    spans = sorted(end - start for q, start, end in prom.calls if q == VOLUME_QUERY)
    assert spans[-1] >= 86400 and spans[0] < 86400  # the first sight's day of history, then the windows
    (a,), (b,) = plain, told
    width = [f.evidence["expected_band"][1] - f.evidence["expected_band"][0] for f in (a, b)]
    assert width[1] < 0.95 * width[0]  # busier than usual: a narrower band than the series' average noise
    assert a.evidence["volume_factor"] is None and "traffic" not in a.message
    assert 0.5 < b.evidence["volume_factor"] < 0.95 and "its usual width for this traffic" in b.message


def test_a_rejected_volume_query_is_logged_once_and_the_ratio_is_judged_without_it(tmp_path, caplog, monkeypatch):
    """A volume only scales the band: its failure is no missing data (which would open an
    incident and hold every other one open), it is a warning in the log, once per reason."""
    monkeypatch.setattr(gather, "_volume_warned", {})
    curves = {CTR_QUERY: ctr(), ERR_QUERY: error_ratio(T0 + 3600)}
    with caplog.at_level(logging.WARNING, logger="vigil.gather"):
        _, found = _errors_slo(tmp_path / "rejected", VOLUME_QUERY, RejectingPrometheus(curves))
        _, plain = _errors_slo(tmp_path / "plain", None, StubPrometheus(curves))
    warned = [r for r in caplog.records if r.getMessage().startswith("volume query unusable")]
    assert len(warned) == 1 and "parse error" in warned[0].reason and warned[0].signal == "errors"
    assert [(a.onset, a.score) for a in found] == [(a.onset, a.score) for a in plain]  # as without a volume


def test_with_anomalies_off_no_volume_is_read(tmp_path):
    prom = StubPrometheus({CTR_QUERY: ctr(), ERR_QUERY: error_ratio(T0 + 3600), VOLUME_QUERY: requests_per_s})
    _errors_slo(tmp_path, VOLUME_QUERY, prom, policy={"anomaly_threshold": 1.0})
    assert prom.calls and not [c for c in prom.calls if c[0] == VOLUME_QUERY]


def test_a_kpi_reads_its_volume_over_its_own_span(tmp_path):
    """A KPI is read from the baseline's start (the KPI-change detector compares the two):
    its volume over the same span, so the two share their timestamps."""
    impressions = "sum(rate(impressions_total[5m]))"
    kpi = {"name": "ctr", "query": CTR_QUERY, "volume_query": impressions}
    prom = StubPrometheus({CTR_QUERY: ctr(), P99_QUERY: flat, impressions: requests_per_s})
    cfg = make_config(tmp_path, models=[model_config(kpis=[kpi])])
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    cycles(vigil, [T0, T0 + 60])
    spans = {q: sorted((s, e) for q2, s, e in prom.calls if q2 == q) for q in (CTR_QUERY, impressions)}
    assert spans[impressions] == spans[CTR_QUERY]  # a day at first sight, then the baseline-long windows
    w = cfg.models[0]
    plan = ModelPlan(w, Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800), False)
    assert planned_ranges([plan], T0)[(T0 - 5400, T0)] == [CTR_QUERY, impressions]
    assert planned_ranges([dataclasses.replace(plan, anomalies=False)], T0)[(T0 - 5400, T0)] == [CTR_QUERY]


def test_a_sweep_prefetches_the_volume_with_its_ratio(tmp_path):
    slo = {"name": "errors", "query": ERR_QUERY, "threshold": 0.5, "volume_query": VOLUME_QUERY}
    cfg = make_config(tmp_path, models=[model_config(slos=[slo])])
    m = cfg.models[0]
    w = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)
    ranges = planned_ranges([ModelPlan(m, w, True)], w.t)
    assert ranges[(w.start, w.t)] == [ERR_QUERY, VOLUME_QUERY]  # the window, as gather asks it
    assert VOLUME_QUERY in ranges[(w.t - 86400, w.t)]  # and a first sight's day of history


def test_an_empty_volume_query_is_refused_with_its_field_named(tmp_path):
    slo = {"name": "errors", "query": ERR_QUERY, "threshold": 0.5, "volume_query": ""}
    with pytest.raises(ConfigError, match=r"slos\[0\]\(errors\)\.volume_query"):
        make_config(tmp_path, models=[model_config(slos=[slo])])


def test_a_changed_volume_query_is_learnt_afresh_not_judged_in_the_old_units(tmp_path):
    """Requests per second, then per minute (60x): the old usual volume would clip every
    band to a fifth of its width and page on noise. A volume query is part of what the
    series is: a new one is learnt from a day of history, as at first sight."""
    per_minute = f"60 * {VOLUME_QUERY}"
    curves = {CTR_QUERY: ctr(), ERR_QUERY: error_ratio(T0 + 3600), VOLUME_QUERY: requests_per_s,
              per_minute: lambda ts: 60 * requests_per_s(ts)}
    before = make_vigil(make_config(tmp_path, models=[model_config(slos=[
        {"name": "errors", "query": ERR_QUERY, "threshold": 0.5, "volume_query": VOLUME_QUERY}])]),
        prometheus=StubPrometheus(curves), notifiers={})
    before.run_cycle(MODEL, T0 + 1740)  # the cycle before: the same day of history
    before.store.close()
    prom = StubPrometheus(curves)
    _, (found,) = _errors_slo(tmp_path, per_minute, prom)
    assert [q for q, start, end in prom.calls if end - start >= 86400] == [ERR_QUERY, per_minute]
    assert 0.5 < found.evidence["volume_factor"] < 0.95  # as for a series told its volume from the start


def test_a_changed_query_is_a_new_series_learnt_from_its_history_not_a_drop(tmp_path, caplog):
    """CTR in percent, then as a fraction (a query fixed by its owner): the state learnt
    on the old query would read a 100x drop and page. The query is part of the state's key."""
    percent = f"100 * ({CTR_QUERY})"
    curves = {CTR_QUERY: ctr(), percent: lambda ts: 100 * ctr()(ts), P99_QUERY: flat}
    before = make_vigil(make_config(tmp_path, models=[model_config(kpis=[{"name": "ctr", "query": percent}])]),
                        prometheus=StubPrometheus(curves), notifiers={})
    before.run_cycle(MODEL, T0)
    before.store.close()
    prom = StubPrometheus(curves)
    after = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    with caplog.at_level(logging.INFO, logger="vigil.detect"):
        reports = cycles(after, [T0 + 60 * i for i in range(1, 31)])
    assert [q for q, start, end in prom.calls if end - start >= 86400] == [CTR_QUERY]  # its day of history
    (said,) = [r for r in caplog.records if r.getMessage().startswith("anomaly state dropped")]
    assert said.state_key.startswith("ctr|") and said.model == MODEL
    assert not [a for r in reports for a in anomalies(r)]
    with after.store.tx() as s:
        keys = set(after.store.detector_state(s, MODEL))
    assert len([k for k in keys if k.startswith("ctr|")]) == 1  # the old query's state is dropped


def test_a_state_stored_before_the_key_named_its_query_is_resumed_and_moved(tmp_path, monkeypatch):
    cfg = make_config(tmp_path)
    first = make_vigil(cfg, prometheus=StubPrometheus({CTR_QUERY: ctr(), P99_QUERY: flat}), notifiers={})
    first.run_cycle(MODEL, T0)
    with first.store.tx() as s:  # as a store from before wrote it: name and labels only
        state = first.store.detector_state(s, MODEL)
        old = {k.split("|query ")[0] if "|query " in k else k: v for k, v in state.items()}
        first.store.save_detector_state(s, MODEL, old)
    first.store.close()
    prom = StubPrometheus({CTR_QUERY: ctr(), P99_QUERY: flat})
    restarted = make_vigil(cfg, prometheus=prom, notifiers={})

    def broken(*args, **kwargs):
        raise RuntimeError("a detector bug")
    with monkeypatch.context() as m:  # a cycle that fails while taking it over keeps it
        m.setattr(OnlineAnomalyDetector, "score_volume", broken)
        assert restarted.run_cycle(MODEL, T0 + 300).blind
    with restarted.store.tx() as s:
        assert set(restarted.store.detector_state(s, MODEL)) == set(old)
    restarted.run_cycle(MODEL, T0 + 600)
    assert not [c for c in prom.calls if c[2] - c[1] >= 86400]  # resumed: no cold start
    with restarted.store.tx() as s:
        now = restarted.store.detector_state(s, MODEL)
    ctr_keys = [k for k in now if k.startswith("ctr|")]
    assert len(ctr_keys) == 1 and "|query " in ctr_keys[0]  # moved under the new key, the old row gone
    old_ctr = next(v for k, v in old.items() if k.startswith("ctr|"))
    assert now[ctr_keys[0]]["detector"]["scalars"][0] > old_ctr["detector"]["scalars"][0]  # and carried on


def test_a_kpi_and_an_slo_of_one_name_keep_a_state_each(tmp_path):
    cfg = make_config(tmp_path, models=[model_config(slos=[{"name": "ctr", "query": P99_QUERY, "threshold": 0.5}])])
    prom = StubPrometheus({CTR_QUERY: ctr(), P99_QUERY: flat})
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    cycles(vigil, [T0, T0 + 300, T0 + 600])
    assert len([c for c in prom.calls if c[2] - c[1] >= 86400]) == 2  # a day of history once, for each
    with vigil.store.tx() as s:
        state = vigil.store.detector_state(s, MODEL)
    assert len([k for k in state if k.startswith("ctr|")]) == 2


def test_the_state_of_a_signal_taken_out_of_the_config_is_dropped(tmp_path):
    prom = StubPrometheus({CTR_QUERY: ctr(), P99_QUERY: flat})
    before = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    before.run_cycle(MODEL, T0)
    before.store.close()
    after = make_vigil(make_config(tmp_path, models=[model_config(slos=[])]), prometheus=prom, notifiers={})
    after.run_cycle(MODEL, T0 + 300)
    with after.store.tx() as s:
        keys = set(after.store.detector_state(s, MODEL))
    assert [k.split("|")[0] for k in keys] == ["ctr"]  # p99_latency's state is gone, the KPI's kept
