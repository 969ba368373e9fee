"""Some Thanos setups put a warning on every answer that says nothing about the query's data
("No StoreAPIs matched for this query": a store whose external labels rule the query out).
Read as a partial answer, it held every automatic rollback and every resolve for good;
`sources.prometheus.ignore_warnings` names the harmless ones, and any other warning still
marks the answer partial."""
from __future__ import annotations

from typing import Any

import pytest

from monitor.clock import ReplayClock
from monitor.config import ConfigError, VigilConfig, parse_config
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.fakes.partial_prometheus import THANOS, PartialPrometheus
from tests.helpers_vigil import (
    MODEL,
    T0,
    incident_prometheus,
    make_config,
    metric_value,
    model_config,
    serving_registry,
)

NO_STORE = "No StoreAPIs matched for this query"
IGNORED = "vigil_prometheus_warnings_ignored_total"


def _config(tmp_path: Any, url: str) -> VigilConfig:
    return make_config(tmp_path, models=[model_config()],
                       sources={"prometheus": {"url": url, "step": "60s", "timeout_s": 5, "retries": 0,
                                               "ignore_warnings": [NO_STORE, r"store 10\.9\.9\.9:10901: .*"]},
                                "mlflow": {"tracking_uri": "http://127.0.0.1:9"}})


@pytest.mark.parametrize("warnings, rolled_back", [
    ([NO_STORE], True),  # harmless on every answer: judged as whole
    ([NO_STORE, *THANOS["warnings"]], False),  # a store really down as well: still partial
    # matched in full only: a real store-down warning that merely holds the text is no match
    ([f"{THANOS['warnings'][0]}; {NO_STORE}"], False),
], ids=["ignored", "ignored-and-store-down", "not-a-full-match"])
def test_a_known_harmless_warning_does_not_hold_the_rollback(tmp_path, warnings, rolled_back):
    with PartialPrometheus(incident_prometheus(bad_from=T0 - 300)) as prom:
        cfg = _config(tmp_path, prom.url)
        reg = serving_registry(versions=("1", "2"), version="1")
        # The daemon's own Prometheus client, as `vigil run` builds it.
        v = Vigil(cfg, clock=ReplayClock(T0 - 12000), store=Store(cfg.store.url), registry=reg)
        prom.partial = {"warnings": warnings}  # on every answer
        for i in range(31):
            v.run_cycle(MODEL, T0 - 12000 + 60 * i)
        reg.aliases[(MODEL, "champion")] = "2"
        for t in range(int(T0 - 1200), int(T0 + 60) + 1, 60):
            v.run_cycle(MODEL, t)

        [incident] = v.store.incidents(model=MODEL)
        ctr = next(f for f in incident.findings if f["entity"] == "ctr" and f["kind"] == "kpi_drop")
        actions = [(a.status, a.detail) for a in v.store.actions(model=MODEL)]
        if rolled_back:
            assert reg.moves == [(MODEL, "champion", "1")], actions
            assert "partial" not in ctr["evidence"]
            assert metric_value(v, "vigil_partial_reads_total", model=MODEL) == 0
            assert metric_value(v, IGNORED) >= prom.answers - 5  # (a few are /-/ready probes and the like)
        else:
            assert reg.moves == [], actions
            assert ("refused", "guard: partial_read") in actions
            assert "store 10.0.3.7:10901" in ctr["evidence"]["partial"]
            assert NO_STORE not in ctr["evidence"]["partial"] or len(warnings) == 1


@pytest.mark.parametrize("regex", ["(unclosed", "*star", "a{2,1}"])
def test_a_bad_ignore_warnings_regex_is_refused_naming_field_and_regex(regex):
    with pytest.raises(ConfigError) as e:
        parse_config({"models": [{"name": "m"}],
                      "sources": {"prometheus": {"ignore_warnings": ["ok", regex]}}})
    errors = dict(e.value.errors)
    assert regex in errors["sources.prometheus.ignore_warnings[1]"], errors
    assert "RE2" in errors["sources.prometheus.ignore_warnings[1]"]
    # RE2's reason quotes the regex as written, not as anchored, nor as a bytes repr
    assert "^(?:" not in errors["sources.prometheus.ignore_warnings[1]"] and "b'" not in errors[
        "sources.prometheus.ignore_warnings[1]"], errors


def test_check_config_shows_a_bad_regex_and_warns_of_one_that_matches_every_warning(tmp_path, capsys):
    from monitor.cli import main

    f = tmp_path / "vigil.yaml"
    body = """sources:
  prometheus:
    ignore_warnings:
      - "No StoreAPIs matched for this query"
      - {regex}
models:
  - name: m
"""
    f.write_text(body.format(regex='".*"'))
    assert main(["check-config", str(f)]) == 0
    err = capsys.readouterr().err
    assert f"{f}:5: warning: sources.prometheus.ignore_warnings[1]: '.*' matches every warning" in err, err
    assert "ignore_warnings[0]" not in err

    f.write_text(body.format(regex='"store (10.0.3.7"'))
    assert main(["check-config", str(f)]) == 1
    err = capsys.readouterr().err
    assert "ignore_warnings[1]" in err and "'store (10.0.3.7'" in err and "missing )" in err, err


def test_a_warning_ignored_on_a_batched_answer_counts_once_for_each_query_it_answered(tmp_path):
    """A sweep asks up to 64 queries in one request: the harmless warning on that answer was
    counted once, where the same queries asked alone count it once each, so the counter fell
    64-fold the day batching came in and said nothing of how many answers were filtered."""
    queries = [f'up{{job="j{i}"}}' for i in range(5)]
    counts = []
    for batched in (False, True):
        with PartialPrometheus(incident_prometheus()) as prom:
            (tmp_path / str(batched)).mkdir()
            cfg = _config(tmp_path / str(batched), prom.url)
            v = Vigil(cfg, clock=ReplayClock(T0), store=Store(cfg.store.url), registry=serving_registry())
            prom.partial = {"warnings": [NO_STORE]}
            if batched:
                got = v.prometheus.query_range_many(queries, T0 - 600, T0)
                assert prom.answers == 1 and all(not isinstance(g, Exception) for g in got)
            else:
                for q in queries:
                    v.prometheus.query_range(q, T0 - 600, T0)
            counts.append(metric_value(v, IGNORED))
    assert counts == [len(queries), len(queries)]
