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


@pytest.mark.parametrize(("query", "expected"), [
    # PromQL's keywords are case-insensitive; these were taken for selectors and the query
    # Prometheus received was a parse error ("unexpected { in grouping opts").
    ("sum(rate(x[5m])) BY (job)", 'sum(rate(x{model_version="3"}[5m])) BY (job)'),
    ("sum(rate(e[5m])) OR on() vector(0)", 'sum(rate(e{model_version="3"}[5m])) OR on() vector(0)'),
    ("a AND b", 'a{model_version="3"} AND b{model_version="3"}'),
    ("x OFFSET 5m > Inf", 'x{model_version="3"} OFFSET 5m > Inf'),
    ("x > bool NaN", 'x{model_version="3"} > bool NaN'),
    # group_left / group_right without a label list are valid PromQL.
    ("a * on(job) group_left b", 'a{model_version="3"} * on(job) group_left b{model_version="3"}'),
    ("a / ignoring(code) group_right sum(b) by (job)",
     'a{model_version="3"} / ignoring(code) group_right sum(b{model_version="3"}) by (job)'),
    # `start` and `end` are keywords only as `@ start()` / `@ end()`; a metric may be named so.
    ("x @ end() - end", 'x{model_version="3"} @ end() - end{model_version="3"}'),
])
def test_keywords_in_any_case_and_bare_group_modifiers_are_not_selectors(query, expected):
    assert with_matcher(query, "model_version", "3") == expected


def test_longest_range_reads_compound_durations_and_skips_comments():
    """`[1h30m]` is valid PromQL; read as 0, the canary sampled a 90-minute rate every
    step (60 s) and fed the U test 90 overlapping points per version as if independent."""
    assert longest_range("sum(rate(errors_total[1h30m]))") == 5400
    assert longest_range("max_over_time(rate(x[5m])[2h30m:1m])") == 9000
    assert longest_range("rate(x[1m30s500ms])") == 90.5
    assert longest_range("rate(x[1y])") == 365 * 86400
    assert longest_range("rate(x[5m]) # was rate(x[1d])\n") == 300
