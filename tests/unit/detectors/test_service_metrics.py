"""The per-service metric detector's level: a window is judged against the series' recent
history and, by default, against the normal period too ("both")."""
from __future__ import annotations

import numpy as np

from detectors.records import Direction, Series
from detectors.service_metrics import ServiceMetricsDetector, ServiceMetricsParams

STEP = 60.0


def _series(values: list[float], t0: float) -> Series:
    return Series("latency_p99_s", {"service": "food"}, t0 + STEP * np.arange(len(values)), np.asarray(values, float))


def _assess(level: str, normal: list[float], recent: list[float], window: list[float]):
    det = ServiceMetricsDetector(ServiceMetricsParams(level=level))
    state = det.fit([_series(normal, 0.0)], 0.0, STEP * len(normal))
    t0 = 100_000.0
    start = t0 + STEP * len(recent)
    return det.assess(state, [_series(recent + window, t0)], start, start + STEP * len(window))


# A latency quantile read from histogram buckets: in the normal period it sits at the
# 25 ms bucket more often than at 10 ms; the half hour before the alert was quiet (10 ms).
NORMAL = [0.0248] * 17 + [0.00995] * 10 + [0.0247] * 4 + [0.247]
QUIET = [0.00995] * 30


def test_a_level_the_normal_period_itself_holds_is_no_evidence() -> None:
    back = [0.02485] * 5
    assert _assess("both", NORMAL, QUIET, back).findings == []
    (f,) = _assess("recent", NORMAL, QUIET, back).findings  # the recent level alone: z 15
    assert f.evidence["z"] > 10 and f.baseline == 0.00995


def test_a_level_beyond_both_is_found_and_named_against_the_reading_that_binds() -> None:
    report = _assess("both", NORMAL, QUIET, [0.6] * 5)
    (f,) = report.findings
    # The normal period's median (25 ms) is the weaker reading: it is the one reported.
    assert f.baseline == 0.0248 and "vs baseline median 0.0248" in f.message
    assert f.evidence["z"] < _assess("recent", NORMAL, QUIET, [0.6] * 5).findings[0].evidence["z"]


def test_a_fall_below_both_levels_is_found_against_the_nearer_one() -> None:
    """Availability recorded long ago around 99.05, lately 99.9; a fall to 97 is below
    both, and is measured from the normal period's level, the nearer one."""
    normal = [99.0 + 0.05 * (i % 3) for i in range(60)]
    det = ServiceMetricsDetector(ServiceMetricsParams(level="both"))
    state = det.fit([Series("availability_pct", {"service": "food"}, STEP * np.arange(60), np.asarray(normal))],
                    0.0, 3600.0)
    cur = Series("availability_pct", {"service": "food"}, 100_000.0 + STEP * np.arange(35),
                 np.asarray([99.9] * 30 + [97.0] * 5))
    (f,) = det.assess(state, [cur], 100_000.0 + 30 * STEP, 100_000.0 + 35 * STEP).findings
    assert f.direction is Direction.DOWN and f.baseline == float(np.median(normal)) == 99.05


def test_a_level_the_recent_history_holds_is_no_evidence_either() -> None:
    """The other way round: the normal period sat at 10 ms, the last half hour at 25 ms
    (a slower release, a busier hour); 30 ms is ordinary for the recent level."""
    normal, recent, window = [0.010] * 60, [0.025] * 30, [0.030] * 5
    assert _assess("both", normal, recent, window).findings == []
    assert _assess("recent", normal, recent, window).findings == []
    (f,) = _assess("normal", normal, recent, window).findings
    assert f.evidence["z"] > 6 and f.baseline == 0.010


def _fleet(normal_ms: float, recent_ms: float, window_ms: dict[str, float], services: int = 5,
           level: str = "normal"):
    """`services` services whose latency sat at `normal_ms` in the normal period and at
    `recent_ms` in the half hour before the window (traffic changed since), with 5 % jitter."""
    rng = np.random.default_rng(7)
    names = [f"svc{i}" for i in range(services)]

    def one(name: str, values: np.ndarray, t0: float) -> Series:
        return Series("latency_p99_s", {"service": name}, t0 + STEP * np.arange(len(values)), values)

    det = ServiceMetricsDetector(ServiceMetricsParams(level=level))
    state = det.fit([one(n, normal_ms * (1 + 0.05 * rng.standard_normal(60)), 0.0) for n in names], 0.0, 3600.0)
    t0, start = 100_000.0, 100_000.0 + 30 * STEP
    current = [one(n, np.concatenate([recent_ms * (1 + 0.05 * rng.standard_normal(30)),
                                      np.full(5, window_ms.get(n, recent_ms))]), t0) for n in names]
    return det.assess(state, current, start, start + 5 * STEP)


def test_a_normal_period_at_another_level_for_every_service_is_carried_to_the_present() -> None:
    """Recorded at other traffic, the normal period sits at half today's latency for every
    service alike: against it unscaled every service would look shifted. Carried by the
    services' common factor it flags only the one that moved, and says so."""
    report = _fleet(10.0, 20.0, {"svc3": 40.0})
    assert [f.service for f in report.findings] == ["svc3"]
    assert 19.0 < report.findings[0].baseline < 21.0  # the normal median, carried to today's level
    assert any(line.startswith("normal period at another level: latency_p99_s x2.0") for line in report.lacking)
    quiet = _fleet(10.0, 10.0, {"svc3": 40.0})  # same level: nothing to carry, nothing said
    assert [f.service for f in quiet.findings] == ["svc3"] and not any("another level" in x for x in quiet.lacking)


def test_too_few_services_to_tell_a_regime_from_a_fault_are_not_carried() -> None:
    """Two services that both rose may share one cause: with fewer than three, no factor."""
    report = _fleet(10.0, 20.0, {}, services=2)
    assert {f.service for f in report.findings} == {"svc0", "svc1"}
    assert not any("another level" in x for x in report.lacking)


def test_one_service_shifted_before_the_window_cannot_set_the_factor() -> None:
    """A fault under way before the window in one service of five moves the median of
    the services' factors not at all."""
    rng = np.random.default_rng(3)
    det = ServiceMetricsDetector(ServiceMetricsParams(level="normal"))
    names = [f"svc{i}" for i in range(5)]
    normal = [Series("latency_p99_s", {"service": n}, STEP * np.arange(60), 10 * (1 + 0.05 * rng.standard_normal(60)))
              for n in names]
    state = det.fit(normal, 0.0, 3600.0)
    t0, start = 100_000.0, 100_000.0 + 30 * STEP
    current = [Series("latency_p99_s", {"service": n}, t0 + STEP * np.arange(35),
                      np.full(35, 50.0 if n == "svc0" else 10.0)) for n in names]
    report = det.assess(state, current, start, start + 5 * STEP)
    assert [f.service for f in report.findings] == ["svc0"]
    assert not any("another level" in x for x in report.lacking)


def test_a_service_with_many_pods_votes_once() -> None:
    """Three pods of one service at 3x before the window are one vote of four: they do not
    carry the normal period for the others, so a jump in another service is still news
    (per pod, their median would carry it by 1.7x and hide the jump)."""
    rng = np.random.default_rng(5)
    pods = [("a", "a-1"), ("a", "a-2"), ("a", "a-3"), ("b", "b-1"), ("c", "c-1"), ("d", "d-1")]

    def one(service: str, pod: str, values: np.ndarray, t0: float) -> Series:
        return Series("latency_p99_s", {"service": service, "pod": pod}, t0 + STEP * np.arange(len(values)), values)

    det = ServiceMetricsDetector()  # the shipped level: "both"
    state = det.fit([one(sv, pd, 10 * (1 + 0.05 * rng.standard_normal(60)), 0.0) for sv, pd in pods], 0.0, 3600.0)
    t0, start = 100_000.0, 100_000.0 + 30 * STEP
    current = [one(sv, pd, np.concatenate([np.full(30, 30.0 if sv == "a" else 10.0),
                                           np.full(5, 25.0 if sv == "b" else (30.0 if sv == "a" else 10.0))]), t0)
               for sv, pd in pods]
    report = det.assess(state, current, start, start + 5 * STEP)
    assert "b" in {f.service for f in report.findings}
    assert not any("another level" in x for x in report.lacking)


def test_availability_and_mostly_zero_metrics_are_not_carried() -> None:
    """Availability sits at its ceiling (a factor would push it past 100 %); an error count
    at 0 in most services gives no ratio there, and the few that do not are not a regime."""
    det = ServiceMetricsDetector(ServiceMetricsParams(level="normal"))
    names = [f"svc{i}" for i in range(8)]  # three of them with errors: three votes, fewer than half

    def fleet(metric: str, normal: dict[str, float], recent: dict[str, float]) -> list[str]:
        ref = [Series(metric, {"service": n}, STEP * np.arange(60), np.full(60, normal[n])) for n in names]
        state = det.fit(ref, 0.0, 3600.0)
        cur = [Series(metric, {"service": n}, 100_000.0 + STEP * np.arange(35), np.full(35, recent[n])) for n in names]
        return det.assess(state, cur, 100_000.0 + 30 * STEP, 100_000.0 + 35 * STEP).lacking

    assert not any("another level" in x for x in fleet("availability_pct", dict.fromkeys(names, 70.0),
                                                          dict.fromkeys(names, 99.9)))
    errors = {n: (0.03 if n in ("svc0", "svc1", "svc2") else 0.0) for n in names}
    assert not any("another level" in x for x in fleet("errors_per_s", dict.fromkeys(names, 0.01), errors))
    assert any("another level" in x for x in fleet("errors_per_s", dict.fromkeys(names, 0.01),
                                                   dict.fromkeys(names, 0.03)))


def test_a_shift_names_the_level_it_crossed_in_its_message_and_its_alert():
    from alerts.wording import Wording, finding_sentence

    rng = np.random.default_rng(1)
    normal = list(0.2 + 0.01 * rng.standard_normal(60))
    (f,) = _assess("normal", normal, [], [0.5] * 30).findings
    edge = f"{f.threshold:.4g}"
    assert f"held 0.5 for 2+ samples, above {edge}" in f.message
    _, sentence = finding_sentence(f.to_dict(), Wording())
    assert sentence.startswith("is 0.5, above its expected range 0.")  # not a range it never names
    assert f"to {float(f.threshold):.2g}" in sentence


def test_the_levels_of_many_series_are_read_without_a_numpy_median_call_each(monkeypatch) -> None:
    # Six np.median calls per series (its level, the baseline's median and spread, the
    # regime's two and its service's vote) were ~10 % of a Nezha case's CPU, nearly all
    # numpy's overhead on arrays of tens of samples; the same medians come from one sort each.
    calls: list = []
    median = np.median
    monkeypatch.setattr(np, "median", lambda *a, **k: calls.append(1) or median(*a, **k))
    services = [f"svc{i}" for i in range(40)]
    normal = [Series("latency_p99_s", {"service": s}, STEP * np.arange(32), np.asarray(NORMAL)) for s in services]
    det = ServiceMetricsDetector()
    state = det.fit(normal, 0.0, STEP * 32)
    t0 = 100_000.0
    start = t0 + STEP * 30
    current = [Series("latency_p99_s", {"service": s}, t0 + STEP * np.arange(35),
                      np.asarray(QUIET + ([0.6] * 5 if s == "svc7" else [0.00995] * 5))) for s in services]
    calls.clear()
    report = det.assess(state, current, start, start + STEP * 5)
    (f,) = report.findings
    assert f.service == "svc7" and f.value == 0.6
    assert len(calls) < 10, len(calls)  # was 241 for 40 series
