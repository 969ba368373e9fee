"""Held-out NAB figures over random half-splits: nothing about a half is chosen on that half."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nab_scoring import label_file
from benchmarks.nab_transfer import leave_group_out, random_halves, transfer

N = 100  # rows per file; the first 15 are probationary
WINDOW = (40, 49)


def _files(k: int):
    return [label_file(f"f{i}", N, (WINDOW,)) for i in range(k)]


def _scores(window_score: float, fp_score: float = 0.0) -> np.ndarray:
    """A detection at the window's left edge scoring `window_score`, and one far after it
    scoring `fp_score` (a false positive when it reaches the threshold)."""
    s = np.zeros(N)
    s[WINDOW[0]] = window_score
    s[95] = fp_score
    return s


def test_random_halves_partition_the_files_reproducibly():
    splits = random_halves(35, 20, seed=3)
    assert len(splits) == 20
    for a, b in splits:
        assert sorted(a + b) == list(range(35)) and not set(a) & set(b)
        assert (len(a), len(b)) == (17, 18)
    assert splits == random_halves(35, 20, seed=3)
    assert splits != random_halves(35, 20, seed=4)
    assert len({tuple(a) for a, _ in splits}) > 1  # not the same split twenty times


def test_random_halves_refuses_what_cannot_be_split():
    with pytest.raises(ValueError, match="n_files"):
        random_halves(1, 5)
    with pytest.raises(ValueError, match="n_splits"):
        random_halves(10, 0)


def test_each_half_is_scored_at_the_threshold_the_other_half_chose():
    # files 0 and 1: windows at 0.9, false positives at 0.5 -> their half picks 0.9;
    # files 2 and 3: windows at 0.5 only -> their half picks 0.5
    files = _files(4)
    scores = {"default": [_scores(0.9, 0.5), _scores(0.9, 0.5), _scores(0.5), _scores(0.5)]}
    r = transfer(files, scores, [([0, 1], [2, 3])])
    assert r.in_half[1] == pytest.approx(100.0)  # on its own, the second half is perfect ...
    assert r.default[1] == pytest.approx(0.0)  # ... but at 0.9, chosen on the first, it detects nothing
    # the first half at 0.5 (the second half's choice) hits its windows and pays its false positives
    assert r.in_half[0] == pytest.approx(100.0)
    assert 0.0 < r.default[0] < 100.0


def test_the_setting_is_chosen_on_the_other_half_and_ties_go_to_the_default():
    files = _files(6)
    good = [_scores(1.0) for _ in files]  # every window at its left edge, nothing else
    noisy = [_scores(1.0, 1.0) for _ in files]  # the same hits, plus a far false positive each
    r = transfer(files, {"default": noisy, "good": good}, random_halves(6, 5, seed=1))
    assert r.picks == {"good": 10}
    assert np.allclose(r.chosen, 100.0) and np.all(r.default < 100.0)
    same = transfer(files, {"default": good, "copy": good}, random_halves(6, 5, seed=1))
    assert same.picks == {"default": 10}


def test_candidates_must_include_the_default_and_cover_every_file():
    files = _files(4)
    with pytest.raises(ValueError, match="default"):
        transfer(files, {"other": [_scores(1.0)] * 4}, [([0, 1], [2, 3])])
    with pytest.raises(ValueError, match="3 score arrays for 4 files"):
        transfer(files, {"default": [_scores(1.0)] * 3}, [([0, 1], [2, 3])])


def test_a_group_left_out_is_scored_at_the_threshold_the_others_chose():
    files = _files(4)
    scores = [_scores(0.9, 0.5), _scores(0.9, 0.5), _scores(0.5), _scores(0.5)]
    a, b = leave_group_out(files, scores, {"loud": [0, 1], "quiet": [2, 3]})
    assert (a.group, a.n_files, b.group) == ("loud", 2, "quiet")
    assert b.held_out.threshold == pytest.approx(0.9) and b.held_out.windows_hit == 0
    assert b.own.normalised == pytest.approx(100.0) and b.held_out.normalised == pytest.approx(0.0)
    with pytest.raises(ValueError, match="'all'"):
        leave_group_out(files, scores, {"all": [0, 1, 2, 3]})
