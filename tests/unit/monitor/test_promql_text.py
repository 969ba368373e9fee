"""A version label added to every selector of a KPI/SLO query, for the canary's split."""
from __future__ import annotations

import pytest

from monitor.sources.promql_text import PromQLSyntaxError, longest_range, with_matcher


@pytest.mark.parametrize(("query", "expected"), [
    ('sum(rate(clicks_total{model="r"}[5m])) / sum(rate(impressions_total{model="r"}[5m]))',
     'sum(rate(clicks_total{model="r",model_version="3"}[5m])) / '
     'sum(rate(impressions_total{model="r",model_version="3"}[5m]))'),
    ('histogram_quantile(0.99, sum by (le) (rate(latency_bucket{service="api"}[5m])))',
     'histogram_quantile(0.99, sum by (le) (rate(latency_bucket{service="api",model_version="3"}[5m])))'),
    ("up", 'up{model_version="3"}'),
    ('{__name__="up",}', '{__name__="up",model_version="3"}'),
    ("a and on(job) b", 'a{model_version="3"} and on(job) b{model_version="3"}'),
    ("max_over_time(x[10m:1m]) * 1e3 > bool 5", 'max_over_time(x{model_version="3"}[10m:1m]) * 1e3 > bool 5'),
    ('rate(x{path=~"/a{b}"}[5m] offset 1h)', 'rate(x{path=~"/a{b}",model_version="3"}[5m] offset 1h)'),
    ('sum without (pod) (ns:requests:rate5m)', 'sum without (pod) (ns:requests:rate5m{model_version="3"})'),
])
def test_every_selector_gets_the_version_and_nothing_else_does(query, expected):
    assert with_matcher(query, "model_version", "3") == expected


def test_the_value_is_quoted_for_promql():
    assert with_matcher("up", "v", 'a"b\\c') == 'up{v="a\\"b\\\\c"}'


def test_an_unclosed_brace_is_a_clear_error():
    with pytest.raises(PromQLSyntaxError, match="unclosed"):
        with_matcher('rate(x{a="b"[5m])', "v", "1")


def test_longest_range_reads_range_selectors_and_subqueries():
    assert longest_range("sum(rate(a[5m])) / sum(rate(b[1h]))") == 3600
    assert longest_range("max_over_time(x[10m:1m])") == 600
    assert longest_range('x{a="[5m]"}') == 0
