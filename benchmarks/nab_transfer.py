"""Held-out NAB figures over many random half-splits of the corpus (pure: no detector runs).

The two-fold check (`python -m benchmarks.nab --two-fold`) splits the files once, into
even- and odd-indexed halves. With about 27 windows per half one split is a noisy
measurement: which half a handful of windows land in moves the held-out figure by
several points. Here the same rule is applied to many random splits into two halves:
for each split and each direction, the threshold (and, for the "chosen" figure, the
setting among the candidates) is chosen on one half and the other half is scored at it.
Nothing about a half is chosen on that half. The spread of the figures says how far one
split can be trusted, and a paired difference between two detectors (same splits) is a
far less noisy comparison than one split's two numbers.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from benchmarks.nab_scoring import PROFILES, CostProfile, LabelledFile, ProfileResult, optimise, score_at


@dataclass(frozen=True)
class TransferResult:
    """One entry per held-out half (two per split, in split order)."""

    default: np.ndarray  # the default setting, threshold chosen on the other half
    chosen: np.ndarray  # setting and threshold both chosen on the other half
    in_half: np.ndarray  # the default at the threshold best for that half itself (optimistic)
    picks: Counter[str]  # how often each candidate was the one chosen


def random_halves(n_files: int, n_splits: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """`n_splits` random splits of file indices 0..n_files-1 into two halves (sizes differ
    by at most one), reproducible from `seed`."""
    if n_files < 2:
        raise ValueError(f"n_files must be at least 2 to split into halves, got {n_files}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_splits):
        p = rng.permutation(n_files)
        out.append((sorted(int(i) for i in p[: n_files // 2]), sorted(int(i) for i in p[n_files // 2:])))
    return out


def transfer(labelled: list[LabelledFile], scores: dict[str, list[np.ndarray]],
             splits: list[tuple[list[int], list[int]]], default: str = "default",
             profile: CostProfile = PROFILES[0]) -> TransferResult:
    """Held-out scores of every half of every split, the threshold (and setting) chosen
    on the other half. `scores` maps a candidate setting's name to its per-file scores;
    it must hold `default`. A tie between candidates goes to the default, then to the
    first in `scores`' order."""
    if default not in scores:
        raise ValueError(f"scores must hold the default candidate {default!r}; got {sorted(scores)}")
    for name, per_file in scores.items():
        if len(per_file) != len(labelled):
            raise ValueError(f"candidate {name!r}: {len(per_file)} score arrays for {len(labelled)} files")
    order = [default] + [n for n in scores if n != default]
    dflt, chosen, in_half = [], [], []
    picks: Counter[str] = Counter()
    for a, b in splits:
        fitted = {n: [optimise([labelled[i] for i in h], [scores[n][i] for i in h], profile) for h in (a, b)]
                  for n in order}
        for k, held in enumerate((a, b)):
            other = 1 - k
            files = [labelled[i] for i in held]
            pick = max(order, key=lambda n: fitted[n][other].normalised)  # first maximum wins a tie
            picks[pick] += 1
            dflt.append(score_at(files, [scores[default][i] for i in held], profile,
                                 fitted[default][other].threshold).normalised)
            chosen.append(score_at(files, [scores[pick][i] for i in held], profile,
                                   fitted[pick][other].threshold).normalised)
            in_half.append(fitted[default][k].normalised)
    return TransferResult(np.array(dflt), np.array(chosen), np.array(in_half), picks)


@dataclass(frozen=True)
class GroupResult:
    group: str
    n_files: int
    held_out: ProfileResult  # at the threshold chosen on every other group's files
    own: ProfileResult  # at the group's own best threshold (optimistic)


def leave_group_out(labelled: list[LabelledFile], scores: list[np.ndarray], groups: dict[str, list[int]],
                    profile: CostProfile = PROFILES[0]) -> list[GroupResult]:
    """Each group of files scored at the threshold chosen on all the other files (e.g. a
    NAB category left out: how the threshold transfers to a kind of series not seen)."""
    if len(scores) != len(labelled):
        raise ValueError(f"{len(scores)} score arrays for {len(labelled)} files")
    out = []
    for name, held in groups.items():
        rest = [i for i in range(len(labelled)) if i not in set(held)]
        if not held or not rest:
            raise ValueError(f"group {name!r}: needs at least one file in it and one outside it")
        chosen = optimise([labelled[i] for i in rest], [scores[i] for i in rest], profile)
        files, sc = [labelled[i] for i in held], [scores[i] for i in held]
        out.append(GroupResult(name, len(held), score_at(files, sc, profile, chosen.threshold),
                               optimise(files, sc, profile)))
    return out
