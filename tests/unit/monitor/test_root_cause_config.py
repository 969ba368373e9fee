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
    ({"call_graph": [{"caller": "api", "callee": "api"}]}, "root_cause.call_graph[0]",
     "a service calling itself (api)"),
    ({"call_graph": [{"caller": " ", "callee": "db"}]}, "root_cause.call_graph[0].caller", "at least 1 character"),
    ({"call_graph": [{"caller": "api", "calee": "db"}]}, "root_cause.call_graph[0].calee",
     "unknown key; did you mean 'callee'"),
    ({"call_graph": [{"caller": "api"}]}, "root_cause.call_graph[0].callee", "required"),
    ({"call_graph": "graphs/missing.csv"}, "root_cause.call_graph", "cannot read the call graph file"),
])
def test_mistakes_name_the_field_and_its_line(tmp_path: Path, section: dict, where: str, what: str) -> None:
    import yaml

    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "m", "root_cause": section}]}, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    issue = next(i for i in e.value.issues if i.path == f"models[0](m).{where}")
    assert what in issue.message and issue.line is not None


def test_the_example_config_declares_root_cause_metrics_and_a_call_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("VIGIL_INGEST_TOKEN", "ingest-token")
    cfg = load_config(ROOT / "vigil.example.yaml")
    rc = cfg.root_cause_for(cfg.models[0])
    assert [m.name for m in rc.metrics] == ["http_errors", "p95_latency_seconds", "goodput", "cpu_usage"]
    assert rc.metrics[2].metric_class == "availability"
    assert rc.edges == [("recsys-api", "recsys-ranker"), ("recsys-ranker", "recsys-features")]


def test_a_sweep_plans_each_root_cause_query_over_the_normal_period_and_the_window() -> None:
    cfg = parse_config({"models": [{"name": "m", "root_cause": {"metrics": [{"name": "e", "query": "errs"}]}}]})
    m = cfg.models[0]
    w = Window(t=10_000.0, start=8_200.0, baseline_start=4_600.0, baseline_end=8_200.0)
    plans = [ModelPlan(m, w, False, cfg.root_cause_for(m))]
    assert planned_ranges(plans, w.t) == {(4_600.0, 10_000.0): ["errs"]}
    assert planned_ranges([ModelPlan(m, w, False)], w.t) == {}


PETSHOP_GRAPH = Path("/work/shared/data/petshop/graphs/low_traffic.csv")


def _load_with_graph(tmp_path: Path, graph: object):
    import yaml

    path = tmp_path / "conf" / "vigil.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"root_cause": {"call_graph": graph}, "models": [{"name": "m"}]}))
    return load_config(path)


def test_a_call_graph_file_is_read_relative_to_the_config_file(tmp_path: Path) -> None:
    """An adjacency matrix, row calls column (the format of PetShop's graphs/), beside the
    config: each non-zero cell is one edge; as a list, the same edges."""
    (tmp_path / "conf" / "graphs").mkdir(parents=True)
    (tmp_path / "conf" / "graphs" / "shop.csv").write_text(",web,orders,db\nweb,0,1,0\norders,0,0,1.0\ndb,0,0,0\n")
    cfg = _load_with_graph(tmp_path, "graphs/shop.csv")
    assert cfg.root_cause_for(cfg.models[0]).edges == [("web", "orders"), ("orders", "db")]
    listed = _load_with_graph(tmp_path, [{"caller": "web", "callee": "orders"}, {"caller": "orders", "callee": "db"}])
    assert listed.root_cause_for(listed.models[0]).edges == [("web", "orders"), ("orders", "db")]


@pytest.mark.skipif(not PETSHOP_GRAPH.exists(), reason="the shared PetShop data is not here")
def test_petshops_service_map_loads_as_a_call_graph(tmp_path: Path) -> None:
    cfg = _load_with_graph(tmp_path, str(PETSHOP_GRAPH))
    edges = cfg.root_cause_for(cfg.models[0]).edges
    import pandas as pd

    adj = pd.read_csv(PETSHOP_GRAPH, index_col=0)  # the benchmark's former reading of it
    assert sorted(edges) == sorted((a, b) for a in adj.index for b in adj.columns if adj.loc[a, b] != 0)
    assert len(edges) == 44


@pytest.mark.parametrize(("text", "what"), [
    (",web,orders\nweb,0,1\norders,0,1\n", "a service calling itself (orders)"),
    (",web,orders\nweb,0,maybe\norders,0,0\n", "row 2 (web), column orders: 'maybe' is not a number"),
])
def test_a_bad_call_graph_file_is_named_with_the_row_at_the_fields_line(tmp_path: Path, text: str,
                                                                          what: str) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "g.csv").write_text(text)
    with pytest.raises(ConfigError) as e:
        _load_with_graph(tmp_path, "g.csv")
    [issue] = e.value.issues
    assert issue.path == "root_cause.call_graph" and what in issue.message and "g.csv" in issue.message
    lines = (tmp_path / "conf" / "vigil.yaml").read_text().splitlines()
    assert issue.line == next(i for i, x in enumerate(lines, 1) if "call_graph:" in x)
