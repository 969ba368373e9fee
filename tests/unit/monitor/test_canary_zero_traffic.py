"""Without `traffic_query`, a challenger whose every KPI and SLO reads 0 over the window got
no traffic: nothing is known of it. It passed on its latency SLO and was promoted (a 0 s
p99 is "better"), or, with a CTR among its KPIs, failed on the CTR's 0 and was pulled.
Zero traffic is never a pass; a fail stands (a CTR at 0 is as much a collapsed challenger
as one that got no calls, and pulling one that got none costs nothing)."""
from __future__ import annotations

from monitor.store.canary import runs
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_canary_cycle import prometheus


def test_a_challenger_whose_every_series_reads_zero_is_never_promoted(tmp_path) -> None:
    canary = {"alias": "challenger", "window": "1h", "promote_after_cycles": 2, "auto_promote": True}
    cfg = make_config(tmp_path, models=[model_config(canary=canary, kpis=[])])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(p99_challenger=0.0, ctr_challenger=0.0), registry=registry)
    for k in range(3):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        assert report.canary is not None and report.canary.overall == "inconclusive"
        assert all("reads 0 at every step" in m.reason for m in report.canary.metrics)
    assert registry.aliases[(MODEL, "champion")] == "1", "a challenger that got no traffic was promoted"
    assert registry.aliases[(MODEL, "challenger")] == "2", "a challenger that got no traffic was pulled"
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert (run.status, run.pass_streak) == ("running", 0)


def test_a_challenger_whose_ctr_collapsed_to_zero_with_no_errors_is_still_pulled(tmp_path) -> None:
    """Its clicks gone and its error ratio 0: every series reads 0, yet that is a collapse, not
    missing traffic; the CTR's fail stands, while the latency's "pass" is not counted."""
    canary = {"alias": "challenger", "window": "1h"}
    cfg = make_config(tmp_path, models=[model_config(canary=canary)])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(p99_challenger=0.0, ctr_challenger=0.0), registry=registry)
    report = vigil.run_cycle(MODEL, T0)
    assert report.canary is not None and report.canary.overall == "fail"
    verdicts = {m.metric: m for m in report.canary.metrics}
    assert verdicts["ctr"].verdict == "fail"
    p99 = verdicts["p99_latency"]
    assert p99.verdict == "inconclusive" and "reads 0 at every step" in p99.reason
    assert (MODEL, "challenger") not in registry.aliases, "a challenger whose CTR collapsed kept its traffic"


def test_a_challenger_with_one_metric_at_zero_is_still_judged(tmp_path) -> None:
    """A 0 on one metric is a reading (no errors, a CTR that collapsed), not missing traffic."""
    canary = {"alias": "challenger", "window": "1h"}
    cfg = make_config(tmp_path, models=[model_config(canary=canary)])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(ctr_challenger=0.0), registry=registry)
    report = vigil.run_cycle(MODEL, T0)
    assert report.canary is not None and report.canary.overall == "fail"
    assert (MODEL, "challenger") not in registry.aliases
