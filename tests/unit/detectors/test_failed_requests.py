"""Availability beside a request count is judged as failed requests: the service that
fails 24 of its 800 requests outranks the caller that sees 7 of its 60 fail, although the
caller's percentage fell four times as far."""
from __future__ import annotations

import numpy as np

from detectors.failed_requests import failed_requests
from detectors.records import Series
from detectors.service_metrics import ServiceMetricsDetector

STEP = 300.0
N_NORMAL = 200


def _pair(service: str, requests: float, availability: list[float], t0: float) -> list[Series]:
    t = t0 + STEP * np.arange(len(availability))
    return [Series("availability_Average", {"service": service, "pod": service}, t, np.asarray(availability)),
            Series("requests_Sum", {"service": service, "pod": service}, t, np.full(len(t), requests))]


def _strength(with_requests: bool) -> dict[str, float]:
    normal = _pair("search", 800, [100.0] * N_NORMAL, 0.0) + _pair("search_remote", 60, [100.0] * N_NORMAL, 0.0)
    t0 = 1e6
    window = (_pair("search", 800, [100.0, 97.0, 96.8, 100.0], t0)
              + _pair("search_remote", 60, [100.0, 88.3, 85.0, 100.0], t0))
    if not with_requests:
        normal = [s for s in normal if s.name != "requests_Sum"]
        window = [s for s in window if s.name != "requests_Sum"]
    det = ServiceMetricsDetector()
    state = det.fit(normal, 0.0, STEP * N_NORMAL)
    report = det.assess(state, window, t0 + STEP, t0 + 3 * STEP)
    assert {f.service for f in report.findings} == {"search", "search_remote"}
    return dict(report.strength)


def test_the_service_with_more_failed_requests_is_the_stronger() -> None:
    strength = _strength(with_requests=True)
    assert strength["search"] > 2 * strength["search_remote"]


def test_without_a_request_count_availability_is_judged_as_a_percentage() -> None:
    strength = _strength(with_requests=False)
    assert strength["search_remote"] > strength["search"]


def test_a_percentage_and_a_fraction_give_the_same_failed_requests() -> None:
    t = np.arange(3) * STEP
    pct = failed_requests([Series("availability", {"service": "a"}, t, np.array([100.0, 90.0, 50.0])),
                           Series("requests_total", {"service": "a"}, t, np.array([10.0, 10.0, 10.0]))])
    frac = failed_requests([Series("availability", {"service": "a"}, t, np.array([1.0, 0.9, 0.5])),
                            Series("requests_total", {"service": "a"}, t, np.array([10.0, 10.0, 10.0]))])
    assert [s.name for s in pct] == ["failed_requests", "requests_total"]
    np.testing.assert_allclose(pct[0].values, [0.0, 1.0, 5.0])
    np.testing.assert_allclose(frac[0].values, pct[0].values)


def test_each_metric_name_is_classed_once_however_many_pods_report_it(monkeypatch) -> None:
    # Classing a name (its words against every class's stems) was done per series, twice:
    # 600 series of a few dozen names made it a tenth of a Nezha case's metric time.
    import detectors.failed_requests as fr
    import detectors.metric_meaning as mm

    named = []
    real = mm.metric_class

    def counted(name: str, unit: str = "") -> mm.MetricClass:
        named.append(name)
        return real(name, unit)

    monkeypatch.setattr(mm, "metric_class", counted)
    monkeypatch.setattr(fr, "metric_class", counted)
    pods = [s for i in range(50) for s in _pair(f"svc{i}", 100, [100.0, 90.0], 0.0)]
    out = failed_requests(pods)
    assert [s.name for s in out] == ["failed_requests", "requests_Sum"] * 50
    assert np.allclose(out[0].values, [0.0, 10.0])
    assert len(named) <= 4  # two names, each read as a request count and as a class; was 200
