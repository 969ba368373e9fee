"""A KPI ratio at night: no traffic makes it 0/0 (NaN) on the steps without requests.
A window that holds real points is judged on them (no no-data page for an idle hour,
no all clear for a drop that happened before traffic stopped); a window that is 0/0
throughout is not judged: no finding opens an incident, and the blind line keeps an open
one from resolving on it."""
from __future__ import annotations

import numpy as np

from detectors.records import FindingKind
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil


def _vigil(tmp_path, ctr):
    prom = StubPrometheus({CTR_QUERY: ctr, P99_QUERY: lambda ts: np.full(len(ts), 0.2)})
    return make_vigil(make_config(tmp_path), prometheus=prom)


def _about_ctr(report, kind):
    return [f for f in report.findings if f.entity == "ctr" and f.kind is kind]


def test_a_kpi_idle_for_the_last_20_minutes_is_judged_on_its_points_not_a_no_data_page(tmp_path):
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 1200, 0.05, np.nan))  # traffic stopped 20 min ago

    report = vigil.run_cycle(MODEL, T0)

    assert not _about_ctr(report, FindingKind.NO_DATA), [f.message for f in report.findings]
    assert report.incident_id is None and not _about_ctr(report, FindingKind.KPI_DROP)


def test_a_drop_before_traffic_stopped_is_still_found(tmp_path):
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 1500, 0.05, np.where(ts < T0 - 1200, 0.03, np.nan)))

    report = vigil.run_cycle(MODEL, T0)

    (drop,) = _about_ctr(report, FindingKind.KPI_DROP)
    assert drop.value < -30, drop.message  # 0.03 against 0.05: judged on the last real points
    assert T0 - 1560 <= drop.onset <= T0 - 1440, drop.onset - T0  # when it dropped, not "now"


def test_a_window_without_traffic_pages_nobody_and_resolves_nothing(tmp_path):
    # CTR fell to 0.03 in the evening; from T0 - 1900 on, no request at all (0/0 every step).
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 2400, 0.05, np.where(ts < T0 - 1900, 0.03, np.nan)))
    opened = vigil.run_cycle(MODEL, T0 - 1840)
    assert opened.incident_id is not None and _about_ctr(opened, FindingKind.KPI_DROP)

    for i in range(4):  # the idle night: every window is 0/0 throughout
        report = vigil.run_cycle(MODEL, T0 + 60 * i)
        assert not _about_ctr(report, FindingKind.NO_DATA), [f.message for f in report.findings]
        assert any(line.startswith("ctr: no traffic") for line in report.blind), report.blind
        assert report.step != "resolve"

    assert vigil.store.incident(opened.incident_id).status == "open"  # held open: blind is no all clear


def test_an_idle_model_with_nothing_open_gets_no_incident(tmp_path):
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 1800, 0.05, np.nan))

    report = vigil.run_cycle(MODEL, T0)

    assert report.incident_id is None and not report.findings, [f.message for f in report.findings]
    assert any(line.startswith("ctr: no traffic") for line in report.blind), report.blind


def test_dawn_after_an_idle_night_is_no_page_while_its_baseline_is_0_0(tmp_path):
    # No traffic until 5 minutes ago: the baseline hour is 0/0 on every step.
    vigil = _vigil(tmp_path, lambda ts: np.where(ts < T0 - 300, np.nan, 0.05))

    report = vigil.run_cycle(MODEL, T0)

    assert report.incident_id is None and not report.findings, [f.message for f in report.findings]
    assert any(line.startswith("ctr: no traffic in its baseline") for line in report.blind), report.blind
