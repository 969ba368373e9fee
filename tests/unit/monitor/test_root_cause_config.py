"""`root_cause:` configuration: defaults keep every config valid, mistakes name the field
and its line, a model's section replaces the global one, and a sweep plans the queries."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config
from monitor.cycle.prefetch import ModelPlan, planned_ranges
from monitor.types import Window

ROOT = Path(__file__).resolve().parents[3]


def test_without_a_root_cause_section_nothing_is_read() -> None:
    cfg = parse_config({"models": [{"name": "m"}]})
    rc = cfg.root_cause_for(cfg.models[0])
    assert rc.metrics == [] and rc.service_label == "service"


def test_a_models_section_replaces_the_global_one() -> None:
    cfg = parse_config({"root_cause": {"metrics": [{"name": "errors", "query": "q1"}]},
                        "models": [{"name": "a"},
                                   {"name": "b", "root_cause": {"service_label": "app",
                                                                "metrics": [{"name": "lat", "query": "q2"}]}}]})
    assert [m.name for m in cfg.root_cause_for(cfg.model("a")).metrics] == ["errors"]
    b = cfg.root_cause_for(cfg.model("b"))
    assert b.service_label == "app" and [m.query for m in b.metrics] == ["q2"]


def test_success_is_read_as_availability() -> None:
    cfg = parse_config({"models": [{"name": "m", "root_cause": {"metrics": [
        {"name": "ok", "query": "q", "meaning": "success"}, {"name": "cpu", "query": "q2"}]}}]})
    assert [m.metric_class for m in cfg.root_cause_for(cfg.models[0]).metrics] == ["availability", None]


@pytest.mark.parametrize(("section", "where", "what"), [
    ({"metrics": [{"name": "a", "query": "q", "meaning": "fast"}]}, "root_cause.metrics[0](a).meaning",
     "'availability', 'success', 'latency', 'errors', 'saturation' or 'unknown'"),
    ({"metrics": [{"name": "a"}]}, "root_cause.metrics[0](a).query", "required"),
    ({"metrics": [{"name": "a", "query": "q"}, {"name": "a", "query": "r"}]}, "root_cause.metrics",
     "unique metric names"),
    ({"service_label": "app-name"}, "root_cause.service_label", "should match pattern"),
    ({"metric": []}, "root_cause.metric", "unknown key"),
])
def test_mistakes_name_the_field_and_its_line(tmp_path: Path, section: dict, where: str, what: str) -> None:
    import yaml

    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "m", "root_cause": section}]}, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    [issue] = e.value.issues
    assert issue.path == f"models[0](m).{where}" and what in issue.message and issue.line is not None


def test_the_example_config_declares_root_cause_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("VIGIL_INGEST_TOKEN", "ingest-token")
    cfg = load_config(ROOT / "vigil.example.yaml")
    rc = cfg.root_cause_for(cfg.models[0])
    assert [m.name for m in rc.metrics] == ["http_errors", "p95_latency_seconds", "goodput", "cpu_usage"]
    assert rc.metrics[2].metric_class == "availability"


def test_a_sweep_plans_each_root_cause_query_over_the_normal_period_and_the_window() -> None:
    cfg = parse_config({"models": [{"name": "m", "root_cause": {"metrics": [{"name": "e", "query": "errs"}]}}]})
    m = cfg.models[0]
    w = Window(t=10_000.0, start=8_200.0, baseline_start=4_600.0, baseline_end=8_200.0)
    plans = [ModelPlan(m, w, False, cfg.root_cause_for(m))]
    assert planned_ranges(plans, w.t) == {(4_600.0, 10_000.0): ["errs"]}
    assert planned_ranges([ModelPlan(m, w, False)], w.t) == {}
