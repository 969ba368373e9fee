"""NAB scoring rules on hand-made series, and parity with NAB's own scorer on the shared part."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.nab_scoring import (
    PROFILES,
    label_file,
    optimise,
    probation_length,
    scaled_sigmoid,
    score_at,
    window_bounds,
)

STANDARD, LOW_FP, LOW_FN = PROFILES
NAB = Path(__file__).resolve().parents[4] / "shared" / "data" / "nab"


def _s(x: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def _file(n=100, windows=((40, 49),), name="f"):
    return label_file(name, n, windows)


def _scores(n=100, at=()):
    s = np.zeros(n)
    s[list(at)] = 1.0
    return s


def test_scaled_sigmoid_landmarks():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661429815)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(3.0) == -1.0  # far false positive: the full cost
    assert scaled_sigmoid(2.9) > -1.0


def test_probation_is_15_percent_capped_at_750_rows():
    assert probation_length(100) == 15
    assert probation_length(10_000) == 750


def test_detection_at_left_edge_scores_exactly_a_tp():
    r = score_at([_file()], [_scores(at=[40])], STANDARD, 0.5)
    assert r.raw == pytest.approx(1.0, abs=1e-12)
    assert r.windows_hit == 1
    assert r.normalised == pytest.approx(100.0)


def test_detection_at_right_edge_scores_little():
    r = score_at([_file()], [_scores(at=[49])], STANDARD, 0.5)
    # p = -(49 - 49 + 1) / 10
    assert r.raw == pytest.approx(_s(-0.1) / _s(-1.0), abs=1e-12)


def test_only_the_earliest_detection_in_a_window_counts():
    r = score_at([_file()], [_scores(at=[45, 41, 49])], STANDARD, 0.5)
    assert r.raw == pytest.approx(_s(-(49 - 41 + 1) / 10) / _s(-1.0), abs=1e-12)


def test_false_positive_just_after_a_window_costs_little():
    r = score_at([_file()], [_scores(at=[50])], STANDARD, 0.5)
    # the window is missed (-1) and the FP costs A_FP * S(|50 - 49| / (10 - 1))
    assert r.raw == pytest.approx(-1.0 + 0.11 * _s(1 / 9), abs=1e-12)
    assert -1.0 + 0.11 * _s(1 / 9) > -1.11 + 0.05


def test_false_positive_far_away_costs_the_full_weight():
    after = score_at([_file()], [_scores(at=[90])], STANDARD, 0.5)  # q = 41/9 > 3
    before = score_at([_file()], [_scores(at=[20])], LOW_FP, 0.5)  # no preceding window
    assert after.raw == pytest.approx(-1.11, abs=1e-12)
    assert before.raw == pytest.approx(-1.22, abs=1e-12)


def test_probationary_detections_are_ignored():
    r = score_at([_file()], [_scores(at=[3, 14])], STANDARD, 0.5)
    assert r.raw == pytest.approx(-1.0)
    assert r.false_positive_rows == 0


def test_reward_low_fn_doubles_the_miss_cost_and_the_null_score():
    r = score_at([_file()], [_scores()], LOW_FN, 0.5)
    assert r.raw == pytest.approx(-2.0)
    assert r.normalised == pytest.approx(0.0)


def test_threshold_is_optimised_over_the_corpus():
    a = np.zeros(100)
    a[40], a[90] = 0.9, 0.7  # file A: window hit at 0.9, a far FP at 0.7
    b = np.zeros(100)
    b[40] = 0.6  # file B: its window is only hit from threshold 0.6 down
    r = optimise([_file(name="a"), _file(name="b")], [a, b], STANDARD)
    # 0.9 -> 1 - 1 = 0; 0.7 -> -0.11; 0.6 -> 1 - 0.11 + 1 = 1.89; 0.0 -> lots of FPs
    assert r.threshold == 0.6
    assert r.raw == pytest.approx(1.89, abs=1e-12)
    assert r.normalised == pytest.approx(100 * (1.89 + 2) / 4)
    assert r.windows_hit == 2


def test_a_tie_goes_to_the_highest_threshold():
    s = np.zeros(100)
    s[40], s[45] = 0.9, 0.8  # 0.8 only adds a later detection in the same window
    r = optimise([_file()], [s], STANDARD)
    assert r.threshold == 0.9


def test_detecting_nothing_is_a_candidate():
    s = np.zeros(100)
    s[20:40] = 0.5  # only false positives before the window
    r = optimise([_file()], [s], STANDARD)
    assert r.threshold == 1.1 and r.raw == -1.0


def test_window_edges_must_be_rows_of_the_file():
    ts = np.datetime64("2020-01-01T00:00", "us") + np.arange(12) * np.timedelta64(5, "m")
    assert window_bounds("f", ts, [["2020-01-01 00:10:00.000000", "2020-01-01 00:20:00"]]) == ((2, 4),)
    with pytest.raises(ValueError, match="00:12"):
        window_bounds("f", ts, [["2020-01-01 00:12:00", "2020-01-01 00:20:00"]])


# NAB's own scorer on the 35-file part (../shared/data/nab/README.md)
REFERENCE = {
    ("numenta", "standard"): (0.555458997389, 18.24442679468312, 66.58584254062102, 44),
    ("numenta", "reward_low_FP_rate"): (0.602095149663, 11.885621893625986, 60.80511081238726, 43),
    ("numenta", "reward_low_FN_rate"): (0.555458997389, 7.244426794683121, 71.057228360414, 44),
    ("windowedGaussian", "standard"): (0.999999999999, -30.832343590890986, 21.97059673555365, 25),
    ("windowedGaussian", "reward_low_FP_rate"): (1.0, -49.64337932223738, 4.869655161602383, 24),
    ("windowedGaussian", "reward_low_FN_rate"): (0.999999999999, -60.832343590890986, 29.79857964188425, 25),
}


@pytest.mark.skipif(not (NAB / "reference_results").is_dir(), reason="shared NAB data not present")
@pytest.mark.parametrize("detector", ["numenta", "windowedGaussian"])
def test_reproduces_nab_scores_of_published_results(detector):
    from benchmarks.nab import discover, evaluate, read_csv

    windows = json.loads((NAB / "combined_windows.json").read_text())
    found = discover(NAB / "reference_results" / detector, windows, results=True)
    assert len(found) == 35
    files = [read_csv(path, key) for key, path in found]
    results, _ = evaluate(files, [f.anomaly_score for f in files], windows)
    for r in results:
        threshold, raw, normalised, hits = REFERENCE[(detector, r.profile)]
        assert r.n_windows == 55
        assert r.threshold == pytest.approx(threshold, abs=1e-12)
        assert r.raw == pytest.approx(raw, abs=1e-9)
        assert r.normalised == pytest.approx(normalised, abs=1e-9)
        assert r.windows_hit == hits
