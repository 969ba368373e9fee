"""A Prometheus-compatible store, or a proxy before one, that answers outside the HTTP API's
shape: a value that is no number, a point without its value, a `vector` where a range query
asked for a `matrix`. The query is then unavailable with a reason that names where the answer
is wrong and what was expected; the model's other signals are still judged."""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from detectors.records import FindingKind, Series
from monitor.sources import prometheus_errors
from monitor.sources.errors import SourceUnavailable
from monitor.sources.prometheus import PrometheusSource
from tests.fakes.partial_prometheus import PartialPrometheus
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    model_config,
    step_curve,
)

REVENUE_QUERY = 'sum(rate(revenue_total{model="recommender"}[5m]))'


class _Garbled(PartialPrometheus):
    """Whole answers, except the CTR query's, whose rows `garble` rewrites."""

    def __init__(self, stub: StubPrometheus, garble: Any) -> None:
        super().__init__(stub)
        self.garble = garble

    def answer(self, path: str, q: dict[str, str]) -> dict[str, Any]:
        body = super().answer(path, q)
        if q.get("query") == CTR_QUERY:
            body["data"] = self.garble(body["data"])
        return body


def _point_text(data: dict[str, Any]) -> dict[str, Any]:
    data["result"][0]["values"][-1][1] = "n/a"
    return data


def _short_point(data: dict[str, Any]) -> dict[str, Any]:
    data["result"][0]["values"][3] = [data["result"][0]["values"][3][0]]
    return data


def _vector(data: dict[str, Any]) -> dict[str, Any]:
    return {"resultType": "vector", "result": [{"metric": {}, "value": data["result"][0]["values"][-1]}]}


@pytest.mark.parametrize(("garble", "named"), [
    (_point_text, r"data\.result\[0\]\.values\[\d+\]: expected a number as text .*got 'n/a'"),
    (_short_point, r"data\.result\[0\]\.values\[3\]: expected \[time, \"value\"\] points, got \[\d+\.0\]"),
    (_vector, r"data\.resultType: expected matrix, got 'vector'"),
])
def test_a_malformed_answer_is_named_and_the_other_kpis_still_judged(tmp_path, garble, named):
    stub = StubPrometheus({CTR_QUERY: lambda ts: np.full(len(ts), 0.05),
                           REVENUE_QUERY: step_curve(100.0, 60.0, T0 - 600)})  # revenue fell 40 %
    with _Garbled(stub, garble) as prom:
        cfg = make_config(tmp_path, models=[model_config(
            kpis=[{"name": "ctr", "query": CTR_QUERY}, {"name": "revenue", "query": REVENUE_QUERY}], slos=[])],
            sources={"prometheus": {"url": prom.url, "step": "60s", "retries": 0}})
        vigil = make_vigil(cfg, prometheus=PrometheusSource(cfg.sources.prometheus))

        report = vigil.run_cycle(MODEL, T0)

    kinds = {(f.kind, f.entity) for f in report.findings}
    assert (FindingKind.KPI_DROP, "revenue") in kinds, [f.message for f in report.findings]
    [ctr] = [f for f in report.findings if f.entity == "ctr"]
    assert ctr.kind is FindingKind.NO_DATA
    assert re.search(named, ctr.message), ctr.message
    assert "internal error" not in ctr.message


def test_an_instant_answer_with_a_point_that_is_no_pair_names_it(tmp_path):
    class _Scalarless(PartialPrometheus):
        def answer(self, path: str, q: dict[str, str]) -> dict[str, Any]:
            return {"status": "success", "data": {"resultType": "vector",
                                                  "result": [{"metric": {"pod": "a"}, "value": [T0]}]}}

    with _Scalarless(StubPrometheus()) as prom:
        cfg = make_config(tmp_path, sources={"prometheus": {"url": prom.url, "retries": 0}})
        source = PrometheusSource(cfg.sources.prometheus)
        with pytest.raises(SourceUnavailable, match=r"data\.result\[0\]\.value: expected \[time, \"value\"\], got"):
            source.query("up", T0)


def _reversed(data: dict[str, Any]) -> dict[str, Any]:
    for row in data["result"]:
        row["values"].reverse()
    return data


def test_points_answered_out_of_time_order_are_read_in_order(tmp_path):
    # The CTR fell 60 % ten minutes ago. Read newest first, the oldest point was taken for the
    # last: "no points in the last 90 min: the series stopped", and the drop went unseen.
    stub = StubPrometheus({CTR_QUERY: step_curve(0.05, 0.02, T0 - 600)})
    with _Garbled(stub, _reversed) as prom:
        cfg = make_config(tmp_path, models=[model_config(slos=[])],
                          sources={"prometheus": {"url": prom.url, "step": "60s", "retries": 0}})
        vigil = make_vigil(cfg, prometheus=PrometheusSource(cfg.sources.prometheus))

        report = vigil.run_cycle(MODEL, T0)

    [drop] = [f for f in report.findings if f.entity == "ctr" and f.kind is FindingKind.KPI_DROP]
    assert round(drop.value) == -60, drop.message
    assert not [f for f in report.findings if f.kind is FindingKind.NO_DATA], [f.message for f in report.findings]
    assert drop.onset == T0 - 600  # the drop dated where it began


class _Unaggregated(StubPrometheus):
    """The CTR written without its sum: one series per pod of a large cluster."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        out = super().query_range(query, start, end, step, name=name)
        if query != CTR_QUERY:
            return out
        return [Series(s.name, {"pod": f"ranker-{i:05d}", "namespace": "ml"}, s.timestamps, s.values)
                for s in out for i in range(3000)]


def test_an_answer_past_the_size_limit_is_refused_naming_the_query_and_the_others_still_judged(tmp_path,
                                                                                                monkeypatch):
    # 3,000 series of 90 points are 4 MiB of JSON: under a 1 MiB limit here, as 1 million
    # series (a KPI without its sum on a large cluster, which Prometheus answers in full) are
    # past the real 256 MiB: parsed whole, that answer was the daemon killed for memory.
    monkeypatch.setattr(prometheus_errors, "MAX_ANSWER_BYTES", 2**20, raising=False)
    stub = _Unaggregated({CTR_QUERY: lambda ts: np.full(len(ts), 0.05),
                          REVENUE_QUERY: step_curve(100.0, 60.0, T0 - 600)})
    with PartialPrometheus(stub) as prom:
        cfg = make_config(tmp_path, models=[model_config(
            kpis=[{"name": "ctr", "query": CTR_QUERY}, {"name": "revenue", "query": REVENUE_QUERY}], slos=[])],
            sources={"prometheus": {"url": prom.url, "step": "60s", "retries": 0}})
        vigil = make_vigil(cfg, prometheus=PrometheusSource(cfg.sources.prometheus))

        report = vigil.run_cycle(MODEL, T0)
        asked = prom.answers

    assert (FindingKind.KPI_DROP, "revenue") in {(f.kind, f.entity) for f in report.findings}
    [ctr] = [f for f in report.findings if f.entity == "ctr"]
    assert "query rejected: the answer passed 1 MiB" in ctr.message and "aggregate it" in ctr.message, ctr.message
    assert asked <= 4  # not retried: the same query would bring the same weight
