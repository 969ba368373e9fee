"""Issue 6's proof on the demo itself: every PromQL expression of every dashboard generated
from the demo's vigil.yaml runs against one real Prometheus holding the demo scenario's
data (the bundle's metrics.om) and what Vigil's /metrics would have exposed during the
replay (the replay's vigil-metrics.om), and returns finite values without error over the
whole replay span. A panel that would show "No data" in the demo fails here.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dashboards.provisioning import build_all
from dashboards.uids import model_dashboard_uid
from monitor.config import VigilConfig, load_config
from monitor.grafana.specs import dashboard_specs
from monitor.replay.demo import MODEL, SECOND_MODEL, TIMES, generate_bundle
from monitor.replay.demo_labels import CHURN, shift_span
from monitor.replay.local_prometheus import LocalPrometheus, PrometheusNotInstalled, find_binaries
from monitor.replay.loop import MetricsRecorder, ReplayResult, run_bundle

try:
    from tests.dashboards_queries import finite_values, label_values, run_panel_queries, variable_queries
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from dashboards_queries import finite_values, label_values, run_panel_queries, variable_queries


START, END = TIMES.replay_start, TIMES.replay_end
RANGE = f"{int(END - START)}s"  # $__range: the dashboard opened on the replay's span
STEP = 60


@dataclass
class Demo:
    bundle: Path
    config: VigilConfig
    replay: ReplayResult
    prom: LocalPrometheus
    client: httpx.Client


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("demo-dashboards")
    bundle = generate_bundle(root / "bundle")
    result = run_bundle(bundle, root / "out" / "incidents.jsonl", workdir=root / "work", progress=False)
    with LocalPrometheus([bundle / "metrics.om", result.vigil_metrics_path], root / "prometheus") as prom:
        assert prom.url
        with httpx.Client(base_url=prom.url, timeout=10) as client:
            yield Demo(bundle, load_config(bundle / "vigil.yaml"), result, prom, client)


def query(demo: Demo, expr: str, t: float = END) -> dict[tuple[tuple[str, str], ...], float]:
    resp = demo.client.post("/api/v1/query", data={"query": expr, "time": t})
    assert resp.status_code == 200, resp.text
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in resp.json()["data"]["result"]}


def scalar(demo: Demo, expr: str, t: float = END) -> float:
    (value,) = query(demo, expr, t).values()
    return value


@pytest.mark.integration
@pytest.mark.slow
def test_every_panel_query_has_data_over_the_demo(demo: Demo) -> None:
    runs = run_panel_queries(demo.client, build_all(dashboard_specs(demo.config)), start=START, end=END, step=STEP,
                             rate_interval="5m", interval="1m", range_=RANGE)
    failures = [p for p in (r.problem() for r in runs) if p]
    # The re-ranker shares the recommender's GPU node but serves without vLLM: its vLLM panels
    # are empty, as its GPU detector's optional vLLM series are. Every other panel has data.
    reranker = model_dashboard_uid(SECOND_MODEL)
    failures = [p for p in failures if not (p.startswith(f"{reranker} ") and "'vLLM " in p)]
    assert not failures, "\n".join(failures)
    # 26 today (overview 8, recommender 18: health, serving, SLOs, GPU); fewer means panels went missing.
    assert len(runs) >= 26, len(runs)


@pytest.mark.integration
@pytest.mark.slow
def test_every_variable_offers_the_demo_values(demo: Demo) -> None:
    offered = {}
    for d in build_all(dashboard_specs(demo.config)):
        mine = {v.name: set(label_values(demo.client, v, START, END)) for v in variable_queries(d)}
        if d["uid"] == model_dashboard_uid(CHURN):  # the delayed-label model (demo_labels.py): its own features
            churn = demo.config.model(CHURN)
            assert mine["feature"] == {f.name for f in churn.features} | {churn.prediction_column}
            continue
        offered.update(mine)
    model = demo.config.model(MODEL)
    # the overview's $model offers every configured model that reported
    assert offered == {"model": {m.name for m in demo.config.models}, "env": {"prod"}, "pod": {"recsys-api-0"},
                       "feature": {f.name for f in model.features} | {model.prediction_column}}


@pytest.mark.integration
@pytest.mark.slow
def test_recorded_vigil_metrics_tell_the_demo_story(demo: Demo) -> None:
    """The replay's own metrics, as the dashboards read them, say what the incidents say."""
    sel = f'model="{MODEL}"'
    # one scrape per cycle, at the cycle's time
    assert scalar(demo, f"count_over_time(vigil_model_state{{{sel}}}[{RANGE}])") == demo.replay.cycles
    state = f"max(vigil_model_state{{{sel}}})"
    assert scalar(demo, state, TIMES.deploy_v2 + 10 * 60) == 2  # bad deploy: critical
    assert scalar(demo, f"max_over_time({state}[40m:2m])", TIMES.drift_end) == 1  # upstream drift: warning
    assert scalar(demo, state, TIMES.surge_end) == 2  # GPU saturation: critical
    assert scalar(demo, state, END) == 0  # quiet again
    # "Rollbacks in range" counts the one rollback (a counter that appears at 1 would read 0)
    rollbacks = query(demo, f"sum by (status) (increase(vigil_rollbacks_total{{{sel}}}[{RANGE}]))")
    assert round(rollbacks[(("status", "done"),)]) == 1
    assert sum(v for k, v in rollbacks.items() if k != (("status", "done"),)) == 0
    # the drifted feature crosses the policy's warning on the dashboard's default statistic
    policy = demo.config.policy_for(demo.config.model(MODEL))
    series = f'vigil_feature_drift{{{sel},feature="session_length",statistic="{policy.drift_statistic}"}}'
    drift = f"max_over_time({series}[40m])"
    assert scalar(demo, drift, TIMES.drift_end) > policy.drift_warning
    assert scalar(demo, drift, TIMES.drift_start) < policy.drift_warning
    # CTR under v2's bug sits below the baseline Vigil measured
    low = scalar(demo, f'min_over_time(vigil_kpi_value{{{sel},kpi="ctr"}}[10m])', TIMES.v2_effect_end)
    assert low < scalar(demo, f'max(vigil_kpi_baseline{{{sel},kpi="ctr"}})', TIMES.v2_effect_end)


@pytest.mark.integration
@pytest.mark.slow
def test_vigil_metrics_file_loads_with_promtool_and_the_proof_can_fail(demo: Demo) -> None:
    text = demo.replay.vigil_metrics_path.read_text()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    assert "_created" not in text
    assert "# TYPE vigil_rollbacks counter" in text and "vigil_rollbacks_total{" in text
    assert "# TYPE vigil_cycle_duration_seconds histogram" in text
    # a metric Vigil never exports reads as "No data", as a misnamed panel would
    resp = demo.client.post("/api/v1/query_range", data={"query": "vigil_feature_drift_total", "start": START,
                                                         "end": END, "step": STEP})
    assert resp.status_code == 200 and not finite_values(resp.json()["data"]["result"])


def test_recorder_writes_what_a_scrape_after_each_cycle_would_have_seen(tmp_path: Path) -> None:
    r = CollectorRegistry()
    rollbacks = Counter("vigil_rollbacks_total", "Rollbacks", ["model", "status"], registry=r)
    state = Gauge("vigil_model_state", "State", ["model"], registry=r)
    cycle = Histogram("vigil_cycle_duration_seconds", "Cycle", ["model"], buckets=(0.1, 1), registry=r)
    rec = MetricsRecorder(r)
    for i, t in enumerate([1000.0, 1120.0, 1240.0]):
        state.labels("m").set(i)
        cycle.labels("m").observe(0.5)
        if i == 1:
            rollbacks.labels("m", "done").inc()  # first seen at the second scrape
        rec.sample(t)
    path = tmp_path / "x.vigil-metrics.om"
    rec.write(path)
    lines = path.read_text().splitlines()
    assert lines[-1] == "# EOF" and not any("_created" in x for x in lines)
    assert "# TYPE vigil_rollbacks counter" in lines
    assert [x.split()[-2:] for x in lines if x.startswith("vigil_rollbacks_total")] == [["1.0", "1120"],
                                                                                       ["1.0", "1240"]]
    assert [x.split()[-2:] for x in lines if x.startswith("vigil_model_state")] == [["0.0", "1000"],
                                                                                   ["1.0", "1120"],
                                                                                   ["2.0", "1240"]]
    scraped = 'instance="replay",job="vigil",model="m",le="+Inf"'
    assert [x.split()[-2] for x in lines if x.startswith(f"vigil_cycle_duration_seconds_bucket{{{scraped}}}")] \
        == ["1.0", "2.0", "3.0"]
    sums = [float(x.split()[-2]) for x in lines if x.startswith("vigil_cycle_duration_seconds_sum")]
    assert np.allclose(sums, [0.5, 1.0, 1.5])


@pytest.mark.integration
@pytest.mark.slow
def test_recorded_performance_metrics_show_the_delayed_label_drop(demo: Demo) -> None:
    """Half an hour after the concept shift ends, the churn model's realised accuracy (from
    the labels) is far below its reference while the CBPE estimate is not, and it is critical."""
    _, shift_end = shift_span(TIMES)
    at = shift_end + 30 * 60
    sel = f'model="{CHURN}",metric="accuracy"'
    realised = scalar(demo, f'max(vigil_model_performance{{{sel},basis="realised"}})', at)
    reference = scalar(demo, f'max(vigil_model_performance{{{sel},basis="reference"}})', at)
    estimated = scalar(demo, f'max(vigil_model_performance{{{sel},basis="estimated"}})', at)
    assert realised < 0.9 * reference < estimated
    assert scalar(demo, f'max(vigil_model_state{{model="{CHURN}"}})', at) == 2
    assert 0 < scalar(demo, f'max(vigil_label_coverage_ratio{{model="{CHURN}"}})', at) <= 1
    assert 1800 <= scalar(demo, f'max(vigil_label_delay_seconds{{model="{CHURN}"}})', at) <= 3600
