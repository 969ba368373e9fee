"""OpenMetricsWriter: the text it writes, the mistakes it refuses, and what promtool loads from it."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from monitor.replay.local_prometheus import PrometheusNotInstalled, backfill, find_binaries
from monitor.replay.openmetrics import OpenMetricsWriter

T = 1_700_000_000 + np.arange(3) * 60.0


def _lines(w: OpenMetricsWriter) -> list[str]:
    return w.text().splitlines()


def test_counter_family_drops_total_and_samples_keep_it() -> None:
    for given in ("http_requests_total", "http_requests"):
        w = OpenMetricsWriter()
        w.add(given, {"code": "200"}, T, np.array([0.0, 5.0, 9.0]), type="counter", help="requests")
        lines = _lines(w)
        assert lines[0] == "# TYPE http_requests counter"
        assert lines[1] == "# HELP http_requests requests"
        assert lines[2:5] == [
            'http_requests_total{code="200"} 0.0 1700000000',
            'http_requests_total{code="200"} 5.0 1700000060',
            'http_requests_total{code="200"} 9.0 1700000120',
        ]
        assert lines[-1] == "# EOF"


def test_families_are_grouped_even_when_added_interleaved() -> None:
    w = OpenMetricsWriter()
    w.add("a", {"pod": "1"}, T, np.ones(3))
    w.add("b", {}, T, np.ones(3))
    w.add("a", {"pod": "2"}, T, np.ones(3))
    names = [ln.split("{")[0].split(" ")[0] for ln in _lines(w) if not ln.startswith("#")]
    assert names == ["a"] * 6 + ["b"] * 3
    assert [ln for ln in _lines(w) if ln.startswith("# TYPE")] == ["# TYPE a gauge", "# TYPE b gauge"]


def test_label_values_and_help_are_escaped() -> None:
    w = OpenMetricsWriter()
    w.add("m", {"path": 'C:\\dir "x"\nnext'}, T[:1], np.array([1.0]), help="two\nlines \\ here")
    assert 'm{path="C:\\\\dir \\"x\\"\\nnext"} 1.0 1700000000' in _lines(w)
    assert "# HELP m two\\nlines \\\\ here" in _lines(w)


def test_nan_is_a_gap_by_default_and_infinities_use_openmetrics_spelling() -> None:
    w = OpenMetricsWriter()
    w.add("m", {}, T, np.array([np.nan, np.inf, -np.inf]))
    w.add("n", {}, T, np.array([np.nan, 1.0, 2.0]), skip_nan=False)
    body = [ln for ln in _lines(w) if not ln.startswith("#")]
    assert body == ["m +Inf 1700000060", "m -Inf 1700000120", "n NaN 1700000000", "n 1.0 1700000060",
                    "n 2.0 1700000120"]


def test_timestamps_are_exact_milliseconds_and_sorted() -> None:
    w = OpenMetricsWriter()
    w.add("m", {}, np.array([1700000000.999, 1700000000.123, 1700000001.0]), np.array([2.0, 1.0, 3.0]))
    body = [ln for ln in _lines(w) if not ln.startswith("#")]
    assert body == ["m 1.0 1700000000.123", "m 2.0 1700000000.999", "m 3.0 1700000001.000"]


def test_histogram_points_are_buckets_then_count_then_sum() -> None:
    w = OpenMetricsWriter()
    cum = np.array([[1, 2], [3, 5], [4, 8]])
    w.add_histogram("lat_seconds", {"svc": "a"}, T, [0.1, 1], cum, sums=np.array([0.5, 2, 3]),
                    counts=np.array([2, 6, 9]))
    lines = _lines(w)
    assert lines[0] == "# TYPE lat_seconds histogram"
    assert lines[1:6] == [
        'lat_seconds_bucket{svc="a",le="0.1"} 1.0 1700000000',
        'lat_seconds_bucket{svc="a",le="1.0"} 2.0 1700000000',
        'lat_seconds_bucket{svc="a",le="+Inf"} 2.0 1700000000',
        'lat_seconds_count{svc="a"} 2.0 1700000000',
        'lat_seconds_sum{svc="a"} 0.5 1700000000',
    ]
    assert len(lines) == 1 + 3 * 5 + 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: w.add("1bad", {}, T, np.ones(3)), "metric name '1bad'"),
        (lambda w: w.add("m", {"bad-label": "x"}, T, np.ones(3)), "label name 'bad-label'"),
        (lambda w: w.add("m", {"__name__": "x"}, T, np.ones(3)), "label name '__name__'"),
        (lambda w: w.add("m", {"pod": 3}, T, np.ones(3)), "expected a string value"),
        (lambda w: w.add("m", {}, T, np.ones(2)), "expected 3 rows"),
        (lambda w: w.add("m", {}, np.array([1.0, 1.0, 2.0]), np.ones(3)), "same millisecond"),
        (lambda w: w.add("m", {}, T, np.ones(3), type="summary"), "type: expected one of"),
        (
            lambda w: w.add_histogram("h", {}, T, [1.0, 0.5], np.ones((3, 2)), np.ones(3), np.ones(3)),
            "strictly ascending",
        ),
        (
            lambda w: w.add_histogram("h", {}, T, [0.5, 1.0], np.array([[2, 1]] * 3), np.ones(3), np.full(3, 5)),
            "must not decrease",
        ),
        (
            lambda w: w.add_histogram("h", {}, T, [0.5, 1.0], np.array([[1, 2]] * 3), np.ones(3), np.ones(3)),
            "must not exceed counts",
        ),
        (
            lambda w: w.add_histogram("h", {}, T, [0.5, 1.0], np.ones((3, 3)), np.ones(3), np.ones(3)),
            "pass the \\+Inf bucket as `counts`",
        ),
        (lambda w: w.add_histogram("h", {"le": "1"}, T, [1.0], np.ones((3, 1)), np.ones(3), np.ones(3)), "reserved"),
    ],
)
def test_invalid_input_names_the_problem(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call(OpenMetricsWriter())


def test_same_series_twice_or_two_types_for_one_family_is_refused() -> None:
    w = OpenMetricsWriter()
    w.add("m", {"pod": "a"}, T, np.ones(3))
    with pytest.raises(ValueError, match="added twice"):
        w.add("m", {"pod": "a"}, T + 600, np.ones(3))
    with pytest.raises(ValueError, match="is a gauge; cannot add it again as a counter"):
        w.add("m", {"pod": "b"}, T, np.ones(3), type="counter")


def test_write_is_atomic_and_ends_with_eof(tmp_path: Path) -> None:
    w = OpenMetricsWriter()
    w.add("m", {}, T, np.ones(3))
    path = tmp_path / "bundle" / "metrics.om"
    w.write(path)
    assert path.read_text().endswith("# EOF\n")
    assert [p.name for p in path.parent.iterdir()] == ["metrics.om"]


def _dump(data_dir: Path) -> set[tuple[str, float, int]]:
    """promtool tsdb dump -> {(series, value, ms)}; dump wants a WAL folder, even empty."""
    (data_dir / "wal").mkdir(exist_ok=True)
    _, promtool = find_binaries()
    out = subprocess.run([promtool, "tsdb", "dump", str(data_dir)], capture_output=True, text=True, check=True)
    rows = set()
    for line in out.stdout.splitlines():
        m = re.match(r"^(\{.*\}) (\S+) (\d+)$", line)
        assert m, line
        rows.add((m.group(1), float(m.group(2)), int(m.group(3))))
    return rows


def test_promtool_backfills_every_family_type_exactly(tmp_path: Path) -> None:
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    w = OpenMetricsWriter()
    w.add("vllm:num_requests_waiting", {"pod": "v0"}, T, np.array([0.0, 3.0, 12.0]))
    w.add("tokens_total", {"pod": "v0"}, T + 0.5, np.array([10.0, 20.0, 35.0]), type="counter")
    w.add("legacy", {}, T, np.array([1.0, 2.0, 3.0]), type="unknown")
    w.add_histogram("ttft_seconds", {}, T, [0.5], np.array([[1], [2], [4]]), np.array([0.2, 0.9, 3]),
                    np.array([1, 3, 6]))
    om = tmp_path / "metrics.om"
    w.write(om)
    backfill(find_binaries()[1], om, tmp_path / "data")
    got = _dump(tmp_path / "data")
    ms = (T * 1000).astype(int)
    expected = set()
    for series, vals, offset in [
        ('{__name__="vllm:num_requests_waiting", pod="v0"}', [0, 3, 12], 0),
        ('{__name__="tokens_total", pod="v0"}', [10, 20, 35], 500),
        ('{__name__="legacy"}', [1, 2, 3], 0),
        ('{__name__="ttft_seconds_bucket", le="0.5"}', [1, 2, 4], 0),
        ('{__name__="ttft_seconds_bucket", le="+Inf"}', [1, 3, 6], 0),
        ('{__name__="ttft_seconds_count"}', [1, 3, 6], 0),
        ('{__name__="ttft_seconds_sum"}', [0.2, 0.9, 3], 0),
    ]:
        expected |= {(series, float(v), int(t) + offset) for v, t in zip(vals, ms, strict=True)}
    assert got == expected
