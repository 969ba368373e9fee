"""A GPU node's exporter dies while its GPU is saturated. Its series ends; the other nodes'
go on (so the series as a whole has not stopped). Before, the saturation had no trailing
run left to judge and the model's GPU signal read calm: the incident about that GPU would
resolve on the silence of a dead node. Now the cycle says the node stopped while saturated."""
from __future__ import annotations

from typing import Any

import numpy as np

from detectors.records import FindingKind, Series
from tests.helpers_vigil import T0, StubPrometheus, make_config, make_vigil, model_config

SEL = 'job="dcgm"'


class TwoNodes(StubPrometheus):
    """n1 at 40 % throughout; n2 at 99 % from T0 - 20 min until its exporter died at T0 - 8 min."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        if not query.startswith("DCGM_FI_DEV_GPU_UTIL"):
            return super().query_range(query, start, end, step, name=name)
        ts = np.arange(np.ceil(start / 60) * 60, end + 1e-9, 60.0)
        calm = Series(query, {"Hostname": "n1", "gpu": "0"}, ts, np.full(len(ts), 40.0))
        alive = ts <= T0 - 8 * 60
        dying = Series(query, {"Hostname": "n2", "gpu": "0"}, ts[alive],
                       np.where(ts[alive] >= T0 - 20 * 60, 99.0, 40.0))
        return [calm, dying]


def _gpu_findings(prometheus: Any, tmp_path) -> list:
    cfg = make_config(tmp_path, models=[model_config(gpu={"selector": SEL})])
    report = make_vigil(cfg, prometheus=prometheus).run_cycle("recommender", T0)
    return [f for f in report.findings if f.entity.startswith("gpu") or f.kind == FindingKind.GPU_SATURATION]


def test_a_node_that_stopped_reporting_while_saturated_is_missing_data_not_calm(tmp_path) -> None:
    (gone,) = _gpu_findings(TwoNodes(), tmp_path)
    assert gone.kind == FindingKind.NO_DATA and gone.entity == "gpu gpu_util_pct on n2/gpu 0"
    assert "n2/gpu 0 stopped reporting 8 min ago" in gone.message and "99 >= 95" in gone.message


def test_a_node_that_stopped_while_calm_says_nothing(tmp_path) -> None:
    class CalmEnd(TwoNodes):
        def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                        name: str | None = None) -> list[Series]:
            out = super().query_range(query, start, end, step, name=name)
            return [Series(s.name, s.labels, s.timestamps, np.minimum(s.values, 40.0)) for s in out]

    assert _gpu_findings(CalmEnd(), tmp_path) == []


def test_a_pod_gone_after_a_one_minute_spike_is_no_missing_data(tmp_path) -> None:
    """A rolling deploy replaces a busy pod: its last scrape read 99 % for one minute (not a
    saturation: min_duration is 5 min) and its series ends. Nothing was saturated, so a
    'stopped reporting, saturated, its node is gone' warning incident is a false page."""
    class SpikeThenGone(TwoNodes):
        def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                        name: str | None = None) -> list[Series]:
            out = super().query_range(query, start, end, step, name=name)
            last = T0 - 8 * 60
            return [Series(s.name, s.labels, s.timestamps,
                           np.where((s.timestamps < last) & (s.values > 50), 40.0, s.values)) for s in out]

    assert _gpu_findings(SpikeThenGone(), tmp_path) == []


def test_two_nodes_gone_while_saturated_are_two_findings(tmp_path) -> None:
    class ThreeNodes(TwoNodes):
        def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                        name: str | None = None) -> list[Series]:
            out = super().query_range(query, start, end, step, name=name)
            if query.startswith("DCGM_FI_DEV_GPU_UTIL"):
                out.append(Series(query, {"Hostname": "n3", "gpu": "1"}, out[1].timestamps, out[1].values))
            return out

    gone = _gpu_findings(ThreeNodes(), tmp_path)
    assert sorted(f.entity for f in gone) == ["gpu gpu_util_pct on n2/gpu 0", "gpu gpu_util_pct on n3/gpu 1"]


class LongGone(TwoNodes):
    """n2 at 99 % from T0 - 2 h 20 min until its exporter died at T0 - 2 h: its last point
    is well before the 30-minute window."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        if not query.startswith("DCGM_FI_DEV_GPU_UTIL"):
            return super().query_range(query, start, end, step, name=name)
        ts = np.arange(np.ceil(start / 60) * 60, end + 1e-9, 60.0)
        calm = Series(query, {"Hostname": "n1", "gpu": "0"}, ts, np.full(len(ts), 40.0))
        alive = ts <= T0 - 2 * 3600
        dying = Series(query, {"Hostname": "n2", "gpu": "0"}, ts[alive],
                       np.where(ts[alive] >= T0 - 2 * 3600 - 20 * 60, 99.0, 40.0))
        return [calm, dying] if alive.any() else [calm]


def _cycles(cfg, prometheus: Any, times: list[float]) -> list:
    """The GPU findings of each cycle, a new Vigil (a restart) on the same store for each."""
    out = []
    for t in times:
        report = make_vigil(cfg, prometheus=prometheus).run_cycle("recommender", t)
        out.append([f for f in report.findings if f.entity.startswith("gpu")])
    return out


SEEN_DYING = T0 - 2 * 3600 + 5 * 60  # a cycle 5 min after n2's exporter died


def test_a_node_gone_longer_than_the_window_is_still_missing_data_not_calm(tmp_path) -> None:
    # Before, once its last point left the 30-minute window the node was simply absent and
    # the incident about it could resolve on the silence: the dead node read as calm. What
    # a cycle saw stop is remembered in the model's detector state (so across a restart),
    # without reading the GPU series back over the whole hold every cycle.
    cfg = make_config(tmp_path, models=[model_config(gpu={"selector": SEL})])
    first, later = _cycles(cfg, LongGone(), [SEEN_DYING, T0])
    assert [f.entity for f in first] == ["gpu gpu_util_pct on n2/gpu 0"]
    (gone,) = later
    assert gone.kind == FindingKind.NO_DATA and gone.entity == "gpu gpu_util_pct on n2/gpu 0"
    assert "n2/gpu 0 stopped reporting 120 min ago" in gone.message and "99 >= 95" in gone.message


def test_a_node_gone_longer_than_the_stated_hold_is_dropped(tmp_path) -> None:
    cfg = make_config(tmp_path, models=[model_config(gpu={"selector": SEL, "dead_node_hold": "1h"})])
    first, later, after = _cycles(cfg, LongGone(), [SEEN_DYING, T0 - 3600 - 60, T0])  # 59 min, then 2 h after it died
    assert [len(first), len(later), after] == [1, 1, []]


class BackAgain(LongGone):
    """n2 reports again (calm) from T0 - 10 min."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        out = super().query_range(query, start, end, step, name=name)
        if query.startswith("DCGM_FI_DEV_GPU_UTIL") and end >= T0 - 10 * 60:
            ts = np.arange(max(np.ceil(start / 60) * 60, T0 - 10 * 60), end + 1e-9, 60.0)
            out.append(Series(query, {"Hostname": "n2", "gpu": "0"}, ts, np.full(len(ts), 30.0)))
        return out


def test_a_node_that_reports_again_is_forgotten(tmp_path) -> None:
    cfg = make_config(tmp_path, models=[model_config(gpu={"selector": SEL})])
    first, back, later = _cycles(cfg, BackAgain(), [SEEN_DYING, T0, T0 + 3600])
    assert [len(first), back, later] == [1, [], []]


def test_the_gpu_series_are_read_over_the_window_only(tmp_path) -> None:
    """14 ms a model and cycle (6x the points) went on reading every node's series back
    over the 6-hour hold, for the rare node that died."""
    asked: list[float] = []

    class Counting(TwoNodes):
        def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                        name: str | None = None) -> list[Series]:
            if query.startswith("DCGM"):
                asked.append(end - start)
            return super().query_range(query, start, end, step, name=name)

    _gpu_findings(Counting(), tmp_path)
    assert asked and max(asked) <= 30 * 60
