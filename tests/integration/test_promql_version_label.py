"""The canary's version label added to valid PromQL, checked against a real Prometheus:
each rewritten query must answer exactly what the same query written by hand for one
version answers (and differ between versions), never a parse error."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from monitor.replay.openmetrics import OpenMetricsWriter
from monitor.sources.promql_text import with_matcher
from tests.fixtures_prometheus import running_prometheus

pytestmark = pytest.mark.integration

END = 1_790_000_000.0
STEP = 15.0
N = 81  # 20 minutes

# (query as a user writes it, the same query written by hand for model_version="3")
CASES = [
    ('sum(rate(requests_total{code="500"}[5m])) / sum(rate(requests_total[5m])) OR on() vector(0)',
     'sum(rate(requests_total{code="500",model_version="3"}[5m])) / '
     'sum(rate(requests_total{model_version="3"}[5m])) or on() vector(0)'),
    ("SUM(rate(requests_total[5m])) BY (code)", 'sum by (code) (rate(requests_total{model_version="3"}[5m]))'),
    ("sum(rate(requests_total[5m]) * on(code) group_left code_weight)",
     'sum(rate(requests_total{model_version="3"}[5m]) * on(code) group_left() code_weight{model_version="3"})'),
    ("max(code_weight OFFSET 5m) < Inf", 'max(code_weight{model_version="3"} offset 5m) < +Inf'),
]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ts = END - (N - 1) * STEP + np.arange(N) * STEP
    w = OpenMetricsWriter()
    for version, per_s in (("1", 10.0), ("3", 4.0)):
        for code, share in (("200", 0.9), ("500", 0.1 if version == "1" else 0.3)):
            labels = {"code": code, "model_version": version}
            w.add("requests_total", labels, ts, per_s * share * (ts - ts[0]), type="counter")
            w.add("code_weight", labels, ts, np.full(N, float(len(code) + int(version))))
    path = tmp_path_factory.mktemp("om") / "versions.om"
    w.write(path)
    with running_prometheus(path, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def instant(url: str, query: str) -> dict[str, float]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": query, "time": END}, timeout=10.0)
    body = r.json()
    assert body["status"] == "success", f"{query}: {body.get('error')}"
    return {str(sorted(row["metric"].items())): float(row["value"][1]) for row in body["data"]["result"]}


@pytest.mark.parametrize(("query", "by_hand"), CASES)
def test_the_rewritten_query_is_the_one_written_by_hand(prometheus, query, by_hand):
    rewritten = with_matcher(query, "model_version", "3")
    got, want = instant(prometheus, rewritten), instant(prometheus, by_hand)
    assert want and got == pytest.approx(want), rewritten
    assert instant(prometheus, with_matcher(query, "model_version", "1")) != want  # the label splits it


def test_only_a_zero_filled_query_answers_for_a_version_that_does_not_exist(prometheus):
    """The canary's version split check (monitor/cycle/canary.py) on real PromQL semantics."""
    from monitor.cycle.canary import NO_SUCH_VERSION

    plain = 'sum(rate(requests_total{code="500"}[5m])) / sum(rate(requests_total[5m]))'
    assert instant(prometheus, with_matcher(plain, "model_version", NO_SUCH_VERSION)) == {}
    filled = instant(prometheus, with_matcher(f"{plain} or on() vector(0)", "model_version", NO_SUCH_VERSION))
    assert list(filled.values()) == [0.0]
