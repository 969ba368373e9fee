"""The RCA suite's pieces on a tiny metrics-only folder: one configuration ranks every
case, the z-score ranking runs on the same cases, AC@k is the share within the top k."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks import rca_suite as rs
from tests.unit.benchmarks.test_nezha_files import _folder


def test_the_suite_ranks_with_one_configuration_and_the_zscore_floor(tmp_path: Path) -> None:
    d = rs.load("tiny", _folder(tmp_path, 50))
    ranks, secs = rs.ranks(d, rs.rn.CONFIG)
    assert ranks == [1] and len(secs) == 1 and secs[0] >= 0
    z = rs.zscore_ranks(d)
    assert len(z) == 1 and z[0] is not None  # the caller's drop is as large: z-score cannot tell


def test_figures_are_shares_within_the_top_k() -> None:
    f = rs.figures([1, 2, None, 6])
    assert f["AC@1"] == 0.25 and f["AC@3"] == 0.5 and f["AC@5"] == 0.5
    assert abs(f["Avg@5"] - (0.25 + 0.5 + 0.5 + 0.5 + 0.5) / 5) < 1e-12


def test_the_later_half_is_scored_with_what_the_earlier_half_chose() -> None:
    """Cases out of time order: the earlier half (by onset) picks the candidate, the
    later half scores it; a candidate that only shines later is never the choice."""
    onsets = [40, 10, 30, 20]  # earlier half: cases 1 and 3; later half: 2 and 0
    d = rs.SetData("tiny", None, [pd.Series({"onset_ts": t}) for t in onsets], [])  # type: ignore[arg-type]
    per_case = {"good_early": [5, 1, 1, 1], "good_late": [1, 9, 1, 9]}
    shipped = [1, 1, 1, 1]
    late_shipped, chosen = rs.later_rows(d, per_case, shipped)
    assert rs.halves(d) == ([1, 3], [2, 0])
    assert late_shipped["AC@1"] == 1.0 and late_shipped["cases"] == 2
    assert "1 tied" in chosen["ranking"] and chosen["AC@1"] == 0.5  # good_early on the later half: ranks 1 and 5
