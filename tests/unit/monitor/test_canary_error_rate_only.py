"""A model judged only on error rates (no KPI, no latency) and no `canary.traffic_query`: a
good challenger reads 0 on every metric, which is also what a challenger with no traffic
reads, so it is inconclusive every cycle and is never promoted, while `vigil check-config`
said the file was fine. It now warns at the canary's line; a model with a metric that is
above 0 whenever requests are served (a latency, a CTR), or with a traffic_query, is not
warned about."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.sources.promql_text import with_matcher
from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_canary_cycle import wiggle

ERRORS_ONLY = """
    models:
      - name: m
        slos:
          - name: error_rate
            query: sum(rate(errors_total[5m])) / sum(rate(requests_total[5m]))
            threshold: 0.05
        canary:
          alias: challenger
    """


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    f = tmp_path / "vigil.yaml"
    f.write_text(textwrap.dedent(text).lstrip())
    assert main(["check-config", str(f)]) == 0  # a warning: the file still loads
    return f, capsys.readouterr().err


def test_check_config_warns_that_an_error_rate_only_canary_can_never_pass(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    f, err = _check(tmp_path, ERRORS_ONLY, capsys)
    assert f"{f}:7: warning: models[0](m).canary:" in err, err
    assert "error_rate" in err and "never pass" in err and "canary.traffic_query" in err, err


@pytest.mark.parametrize("extra", [
    "      traffic_query: sum(rate(requests_total[5m]))\n",
])
def test_no_warning_with_a_traffic_query(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str) -> None:
    _, err = _check(tmp_path, textwrap.dedent(ERRORS_ONLY) + extra, capsys)
    assert "canary" not in err, err


def test_no_warning_when_a_metric_is_above_zero_whenever_requests_are_served(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_latency = ERRORS_ONLY.replace("""        canary:""", """          - name: p99_latency
            query: histogram_quantile(0.99, sum by (le) (rate(d_bucket[5m])))
            threshold: 0.5
        canary:""")
    with_ctr = ERRORS_ONLY.replace("""        slos:""", """        kpis:
          - name: ctr
            query: sum(rate(clicks_total[5m])) / sum(rate(views_total[5m]))
        slos:""")
    for text in (with_latency, with_ctr):
        _, err = _check(tmp_path, text, capsys)
        assert "canary" not in err, err


# --------------------------------------------------------------------------- volume_query
QUERY = "sum(rate(errors_total[5m])) / sum(rate(requests_total[5m]))"
VOLUME = "sum(rate(requests_total[5m]))"


def _error_rate_canary(tmp_path: Path, challenger_volume: float, **canary: Any) -> tuple[Any, Any]:
    """An error rate SLO told its volume (the requests behind it); v1 at 1 % errors, v2 at 0."""
    slo = {"name": "error_rate", "query": QUERY, "threshold": 0.05, "volume_query": VOLUME}
    m = model_config(kpis=[], slos=[slo], canary={"alias": "challenger", "window": "1h", "promote_after_cycles": 2,
                                                  "auto_promote": True, **canary})
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    prom = StubPrometheus({QUERY: wiggle(0.01, 1.0), VOLUME: wiggle(50.0, 2.0),
                           with_matcher(QUERY, "model_version", "1"): wiggle(0.01, 3.0),
                           with_matcher(QUERY, "model_version", "2"): lambda ts: ts * 0.0,
                           with_matcher(VOLUME, "model_version", "1"): wiggle(45.0, 4.0),
                           with_matcher(VOLUME, "model_version", "2"): lambda ts: ts * 0.0 + challenger_volume})
    return make_vigil(make_config(tmp_path, models=[m]), prometheus=prom, registry=registry), registry


def test_an_error_rate_at_zero_is_judged_when_its_volume_query_says_the_challenger_served(tmp_path: Path) -> None:
    """The SLO's volume_query names the requests behind the error rate: split by version, it
    tells a challenger with no errors from one with no traffic, without a traffic_query. It
    was inconclusive every cycle (5 of 5 hourly cycles), never promoted."""
    vigil, registry = _error_rate_canary(tmp_path, 5.0)
    overall = [vigil.run_cycle(MODEL, T0 + 60 * k).canary for k in range(2)]
    assert [v.overall if v is not None else None for v in overall] == ["pass", "pass"]
    assert registry.aliases[(MODEL, "champion")] == "2"


def test_an_error_rate_at_zero_with_no_volume_either_is_still_no_pass(tmp_path: Path) -> None:
    vigil, registry = _error_rate_canary(tmp_path, 0.0)
    for k in range(3):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        assert report.canary is not None and report.canary.overall == "inconclusive"
    assert registry.aliases[(MODEL, "champion")] == "1"


def test_an_error_rate_at_zero_on_a_volume_below_min_traffic_is_no_pass(tmp_path: Path) -> None:
    """canary.min_traffic says how many requests/s it takes to judge the challenger at all. Its
    zeros told apart by the volume_query passed and promoted it on 0.05 req/s (3 requests in
    5 minutes: no errors among them says little) where min_traffic asked for 1 req/s; as with a
    traffic_query, it is inconclusive, never promoted."""
    vigil, registry = _error_rate_canary(tmp_path, 0.05, min_traffic=1.0)
    for k in range(3):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        assert report.canary is not None and report.canary.overall == "inconclusive", report.canary
    assert registry.aliases[(MODEL, "champion")] == "1"
    reasons = [v.reason for v in report.canary.metrics if v.verdict == "inconclusive"]
    assert any("0.05" in r and "min_traffic" in r for r in reasons), reasons


def test_no_check_config_warning_when_the_error_rate_names_its_volume(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    text = ERRORS_ONLY.replace("            threshold: 0.05\n",
                               "            threshold: 0.05\n            volume_query: sum(rate(requests_total[5m]))\n")
    _, err = _check(tmp_path, text, capsys)
    assert "canary" not in err, err
