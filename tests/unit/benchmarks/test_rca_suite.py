"""The RCA suite's pieces on a tiny metrics-only folder: one configuration ranks every
case, the z-score ranking runs on the same cases, AC@k is the share within the top k."""
from __future__ import annotations

from pathlib import Path

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
