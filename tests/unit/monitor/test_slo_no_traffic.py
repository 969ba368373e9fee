"""An SLO ratio at night: an error or success ratio (and a latency quantile) is 0/0, NaN,
on the steps without requests. As with KPIs (test_kpi_no_traffic.py), an idle stretch is
no no-data page: a window with real points is judged on them, a window 0/0 throughout is
a blind line and no finding. A breach that ended when traffic stopped is no current
breach, so idle cycles never count towards the SLO's consecutive-cycles rule."""
from __future__ import annotations

import numpy as np

from detectors.records import FindingKind, Series
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil


def _vigil(tmp_path, p99):
    prom = StubPrometheus({CTR_QUERY: lambda ts: np.full(len(ts), 0.05), P99_QUERY: p99})
    return make_vigil(make_config(tmp_path), prometheus=prom)


def _about_p99(report, kind):
    return [f for f in report.findings if f.entity == "p99_latency" and f.kind is kind]


def test_an_slo_without_traffic_all_window_opens_no_incident(tmp_path):
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 2400, 0.2, np.nan))  # idle for 40 min

    report = vigil.run_cycle(MODEL, T0)

    assert not _about_p99(report, FindingKind.NO_DATA), [f.message for f in report.findings]
    assert report.incident_id is None
    assert any(line.startswith("p99_latency: no traffic") for line in report.blind), report.blind


def test_an_slo_idle_for_the_last_20_minutes_is_no_stopped_series(tmp_path):
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 1200, 0.2, np.nan))

    report = vigil.run_cycle(MODEL, T0)

    assert not _about_p99(report, FindingKind.NO_DATA), [f.message for f in report.findings]
    assert report.incident_id is None


def test_a_breach_that_ended_when_traffic_stopped_neither_pages_nor_resolves_on_idle_cycles(tmp_path):
    # Breached (0.9 s > 0.5 s) until T0 + 30, then no request at all: two breached cycles
    # (the test config's limit) page. A run may end a step before the window (T0 + 60 still
    # reads it); from T0 + 120 on, the idle cycles are no breach (no stale streak), no
    # stopped series and no all clear: the incident stays open on a blind line.
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 600, 0.2, np.where(ts < T0 + 30, 0.9, np.nan)))
    vigil.run_cycle(MODEL, T0 - 60)
    first = vigil.run_cycle(MODEL, T0)
    assert _about_p99(first, FindingKind.SLO_BREACH) and first.incident_id is not None

    for i in range(2, 12):
        report = vigil.run_cycle(MODEL, T0 + 60 * i)
        assert not _about_p99(report, FindingKind.SLO_BREACH), [f.message for f in report.findings]
        assert not _about_p99(report, FindingKind.NO_DATA), [f.message for f in report.findings]
        assert any(line.startswith("p99_latency: breached until traffic stopped") for line in report.blind), \
            report.blind
        assert report.step != "resolve"
    assert vigil.store.incident(first.incident_id).status == "open"


def test_idle_cycles_do_not_count_towards_the_consecutive_breach_limit(tmp_path):
    # One breached cycle (streak 1 of 2), then idle cycles: judging them on the last real
    # (breached) points would count each as a breach and page on a stale one.
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 150, 0.2, np.where(ts < T0 + 30, 0.9, np.nan)))
    vigil.run_cycle(MODEL, T0 - 60 * 40)  # healthy before: the streak starts at 0
    assert _about_p99(vigil.run_cycle(MODEL, T0), FindingKind.SLO_BREACH)

    severities = [vigil.run_cycle(MODEL, T0 + 60 * i).severity for i in range(2, 8)]

    assert all(str(s) != "Severity.CRITICAL" and s != "critical" for s in severities), severities


class _RecordingRule(StubPrometheus):
    """p99 from a recording rule evaluated every 15 minutes: read at a 60 s step it has
    points for the 5 minutes of Prometheus' lookback after each evaluation, then none."""

    def query_range(self, query, start, end, step=None, *, name=None):
        out = super().query_range(query, start, end, step, name=name)
        if query != P99_QUERY:
            return out
        s = out[0]
        keep = (s.timestamps % 900) < 300
        return [Series(s.name, s.labels, s.timestamps[keep], s.values[keep])]


def test_a_coarse_slo_between_its_points_is_not_said_to_have_lost_its_traffic(tmp_path):
    # Breached throughout, traffic flowing: between the rule's points nothing is 0/0, so the
    # held cycles must not tell the on-call that traffic stopped; the incident stays open.
    prom = _RecordingRule({CTR_QUERY: lambda ts: np.full(len(ts), 0.05),
                           P99_QUERY: lambda ts: np.where(ts < T0 - 1800, 0.2, 0.9)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom)
    base = T0 - T0 % 900
    reports = [vigil.run_cycle(MODEL, base + 60 * i) for i in range(1, 16)]

    opened = next(r.incident_id for r in reports if r.incident_id is not None)
    held = [line for r in reports for line in r.blind if line.startswith("p99_latency:")]
    assert held and not [line for line in held if "traffic stopped" in line or "0/0" in line], held
    assert vigil.store.incident(opened).status == "open"
