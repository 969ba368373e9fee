"""A model judged only on error rates (no KPI, no latency) and no `canary.traffic_query`: a
good challenger reads 0 on every metric, which is also what a challenger with no traffic
reads, so it is inconclusive every cycle and is never promoted, while `vigil check-config`
said the file was fine. It now warns at the canary's line; a model with a metric that is
above 0 whenever requests are served (a latency, a CTR), or with a traffic_query, is not
warned about."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.cli import main

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
