"""check-config reports every problem in one run: a field that fails validation does not
hide the cross-section problems elsewhere in the file (unknown time interval or model,
retention shorter than the window), while a cross check that reads the broken field is
not run on a guess."""
from __future__ import annotations

import textwrap

import pytest

from monitor.cli import main
from monitor.config import ConfigError, parse_config

CONFIG = textwrap.dedent("""\
    schedule: {lookback: 1h, baseline: 1d}
    retention: {samples: 2h}
    time_intervals:
      - name: nights
        time_intervals: [{times: [{start_time: "00:00", end_time: "06:00"}]}]
    receivers:
      - {name: pd, kind: pagerduty, routing_key_env: PD_KEY, models: [ghost]}
    models:
      - name: m
        mute_time_intervals: [weekends]
        gpu: {util_pct: 150}
    """)


def test_a_field_error_and_the_cross_section_problems_are_reported_together(tmp_path, capsys):
    path = tmp_path / "vigil.yaml"
    path.write_text(CONFIG)

    assert main(["check-config", str(path)]) == 1

    err = capsys.readouterr().err
    assert f"{path}:11: models[0](m).gpu.util_pct:" in err, err  # the field error
    assert f"{path}:2: retention.samples: expected at least" in err, err
    assert f"{path}:10: models[0](m).mute_time_intervals: unknown time interval 'weekends'" in err, err
    assert "receivers[0](pd).models: unknown model(s) ghost" in err, err


def test_a_cross_check_that_reads_the_broken_field_is_not_run():
    with pytest.raises(ConfigError) as e:
        parse_config({"schedule": {"lookback": "forever", "baseline": "1d"}, "retention": {"samples": "2h"},
                      "models": [{"name": "m", "mute_time_intervals": ["weekends"]}]})
    errors = dict(e.value.errors)
    assert "schedule.lookback" in errors
    assert "retention.samples" not in errors  # against which window? not judged with a default
    assert "unknown time interval 'weekends'" in errors["models[0](m).mute_time_intervals"]


def test_a_broken_model_item_leaves_the_checks_that_do_not_read_models():
    with pytest.raises(ConfigError) as e:
        parse_config({"schedule": {"lookback": "1h", "baseline": "1d"}, "retention": {"samples": "2h"},
                      "receivers": [{"name": "pd", "kind": "pagerduty", "routing_key_env": "K", "models": ["m"]}],
                      "models": [{"name": "m", "nonsense": 1}]})
    errors = dict(e.value.errors)
    assert "unknown key" in errors["models[0](m).nonsense"]
    assert "expected at least" in errors["retention.samples"]
    assert not [k for k in errors if k.startswith("receivers")], errors  # model m exists: not "unknown"


def test_two_kpis_or_two_slos_of_a_model_under_one_name_are_refused():
    """Two KPIs named alike were judged on one series (the last one's, looked up by name):
    the other KPI's drop was never seen, and check-config said OK."""
    with pytest.raises(ConfigError) as e:
        parse_config({"models": [{"name": "m", "kpis": [{"name": "ctr", "query": "a"}, {"name": "ctr", "query": "b"}],
                                  "slos": [{"name": "p99", "query": "c", "threshold": 1},
                                           {"name": "ctr", "query": "d", "threshold": 1},
                                           {"name": "p99", "query": "e", "threshold": 1}]}]})
    errors = dict(e.value.errors)
    assert "another KPI" in errors["models[0](m).kpis[1](ctr).name"], errors
    assert "another SLO" in errors["models[0](m).slos[2](p99).name"], errors
    assert "models[0](m).slos[1](ctr).name" not in errors  # a KPI and an SLO may share a name


def test_a_model_left_out_as_broken_hides_nothing_about_the_others():
    with pytest.raises(ConfigError) as e:
        parse_config({"schedule": {"lookback": "30m", "interval": "1m"},
                      "models": [{"name": "m", "policy": {"anomaly_resolution": "2h"}, "mute_time_intervals": ["x"]},
                                 {"kpis": []}]})
    errors = dict(e.value.errors)
    assert "required" in errors["models[1].name"]
    assert "expected at most" in errors["models[0](m).policy.anomaly_resolution"], errors
    assert "unknown time interval 'x'" in errors["models[0](m).mute_time_intervals"], errors
