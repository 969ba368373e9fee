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


def test_a_node_gone_longer_than_the_window_is_still_missing_data_not_calm(tmp_path) -> None:
    # Before, once its last point left the 30-minute window the node was simply absent and
    # the incident about it could resolve on the silence: the dead node read as calm.
    (gone,) = _gpu_findings(LongGone(), tmp_path)
    assert gone.kind == FindingKind.NO_DATA and gone.entity == "gpu gpu_util_pct on n2/gpu 0"
    assert "n2/gpu 0 stopped reporting 120 min ago" in gone.message


def test_a_node_gone_longer_than_the_stated_hold_is_dropped(tmp_path) -> None:
    cfg = make_config(tmp_path, models=[model_config(gpu={"selector": SEL, "dead_node_hold": "1h"})])
    report = make_vigil(cfg, prometheus=LongGone()).run_cycle("recommender", T0)
    assert [f for f in report.findings if f.entity.startswith("gpu")] == []
