"""Canary analysis through `Vigil.run_cycle`: a challenger judged against the champion on
the model's KPI and SLO split by `model_version`, pulled through a durable, audited
intent when it fails, promoted (or suggested) when it keeps passing, and never passed on
no data. Prometheus and MLflow are the in-memory stand-ins of tests/helpers_vigil.py (the
real ones: tests/integration/test_canary_prometheus.py)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from detectors.records import Answer
from monitor.api.app import create_app
from monitor.sources.errors import SourceUnavailable
from monitor.sources.promql_text import with_matcher
from monitor.sources.samples import records_frame
from monitor.store.canary import runs
from monitor.store.intents import RollbackIntentRow
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    metric_value,
    model_config,
    serving_registry,
)


def wiggle(level: float, seed: float) -> Any:
    """`level` with a deterministic ±2 % wobble per step, different per seed."""
    return lambda ts: level * (1 + 0.02 * np.sin(ts / 97.0 * seed + seed))


def prometheus(*, p99_challenger: float | None = 0.1, ctr_challenger: float | None = 0.05) -> StubPrometheus:
    curves = {CTR_QUERY: wiggle(0.05, 1.0), P99_QUERY: wiggle(0.1, 2.0)}
    for q, champion, challenger in ((CTR_QUERY, 0.05, ctr_challenger), (P99_QUERY, 0.1, p99_challenger)):
        curves[with_matcher(q, "model_version", "1")] = wiggle(champion, 3.0)
        if challenger is not None:
            curves[with_matcher(q, "model_version", "2")] = wiggle(challenger, 5.0)
    return StubPrometheus(curves)


def build(tmp_path, prom: StubPrometheus, **canary: Any):
    cfg = make_config(tmp_path, models=[model_config(canary={"alias": "challenger", "window": "1h", **canary})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    return make_vigil(cfg, prometheus=prom, registry=registry), registry


def audit(vigil) -> list[str]:
    return [e.action for e in vigil.store.audit_entries()]


def test_a_slower_challenger_fails_is_pulled_and_the_incident_says_by_how_much(tmp_path):
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    report = vigil.run_cycle(MODEL, T0)

    assert report.canary is not None and report.canary.overall == "fail"
    (finding,) = [f for f in report.findings if f.kind == "canary_fail"]
    assert finding.entity == "p99_latency" and finding.threshold == 0.1
    assert finding.value == pytest.approx(0.6, abs=0.05)  # 60 % slower
    assert "canary v2 vs champion v1" in finding.message and f"worse by {100 * finding.value:.1f}%" in finding.message
    # The challenger alias is gone, the champion untouched.
    assert (MODEL, "challenger") not in registry.aliases and registry.aliases[(MODEL, "champion")] == "1"
    incident = vigil.store.incident(report.incident_id)
    assert incident is not None and "canary failed on p99_latency" in incident.title
    (action,) = [a for a in vigil.store.actions(incident_id=incident.id) if a.kind == "canary_pull"]
    assert (action.status, action.from_version, action.to_version, action.actor) == ("done", "2", "1", "vigil")
    assert "p99_latency" in action.reason and "mlflow_challenger_alias" in action.detail
    assert {"canary.pull.requested", "canary.pull.done"} <= set(audit(vigil))
    assert vigil.store.rollback_times(MODEL) == []  # a pull uses up no rollback cool-down
    assert metric_value(vigil, "vigil_canary_actions_total", model=MODEL, kind="canary_pull", status="done") == 1
    assert metric_value(vigil, "vigil_canary_verdict", model=MODEL, metric="_overall") == 3
    # The incident's message (updated after the pull) carries the verdict table and what Vigil did.
    message = vigil.store.outbox_for_prefix(f"incident:{incident.id}")[-1].payload
    assert message["suggested_action"].startswith("Vigil pulled challenger v2")
    assert any(a["kind"] == "canary_pull" and a["status"] == "done" for a in message["actions"])
    table = next(f for f in message["findings"] if f["kind"] == "canary_fail")["evidence"]["verdict_table"]
    assert {row["metric"] for row in table} == {"ctr", "p99_latency"}


def test_the_pull_is_a_durable_intent_that_finishes_after_an_outage(tmp_path):
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    real_delete = registry.delete_alias
    calls = {"n": 0}

    def flaky(name: str, alias: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "connection refused")
        real_delete(name, alias)

    registry.delete_alias = flaky  # type: ignore[method-assign]
    first = vigil.run_cycle(MODEL, T0)
    assert first.rollback is not None and first.rollback["status"] == "pending"
    assert registry.aliases[(MODEL, "challenger")] == "2"
    vigil.run_cycle(MODEL, T0 + 60)  # the cycle's reconcile finishes the pending intent
    assert (MODEL, "challenger") not in registry.aliases
    with vigil.store.tx() as s:
        intents = s.query(RollbackIntentRow).all()
        assert [(i.status, i.executors) for i in intents] == [("done", ["mlflow_challenger_alias"])]
    assert audit(vigil).count("canary.pull.done") == 1


def test_no_data_for_the_challenger_is_inconclusive_never_a_pass(tmp_path):
    vigil, registry = build(tmp_path, prometheus(p99_challenger=None, ctr_challenger=None), promote_after_cycles=2)
    for k in range(3):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        assert report.canary is not None and report.canary.overall == "inconclusive"
        assert report.incident is None
    reasons = [m.reason for m in report.canary.metrics]
    assert all("challenger v2: no series for this version" in r for r in reasons)
    assert registry.aliases[(MODEL, "challenger")] == "2"  # nothing pulled, nothing promoted
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert (run.status, run.cycles, run.pass_streak) == ("running", 3, 0)
    assert "canary.promotion_suggested" not in audit(vigil)


def test_too_little_traffic_is_inconclusive(tmp_path):
    prom = prometheus()
    traffic = 'sum(rate(requests_total{model="recommender"}[5m]))'
    prom.curves[with_matcher(traffic, "model_version", "2")] = lambda ts: np.full(len(ts), 0.01)
    vigil, _ = build(tmp_path, prom, traffic_query=traffic, min_traffic=1.0)
    report = vigil.run_cycle(MODEL, T0)
    assert report.canary is not None and report.canary.overall == "inconclusive"
    assert all("challenger traffic 0.01/s < 1/s needed" in m.reason for m in report.canary.metrics)


def test_steady_passes_suggest_a_promotion_once(tmp_path):
    vigil, registry = build(tmp_path, prometheus(), promote_after_cycles=2)
    reports = [vigil.run_cycle(MODEL, T0 + 60 * k) for k in range(4)]
    assert [str(r.canary.overall) for r in reports if r.canary] == ["pass"] * 4
    assert audit(vigil).count("canary.promotion_suggested") == 1
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "suggested" and "passed 2 cycles in a row against v1" in run.detail
    assert registry.aliases[(MODEL, "champion")] == "1"  # a suggestion moves nothing


def test_auto_promote_moves_the_champion_alias_as_a_recorded_deploy(tmp_path):
    vigil, registry = build(tmp_path, prometheus(), promote_after_cycles=2, auto_promote=True)
    vigil.run_cycle(MODEL, T0)
    second = vigil.run_cycle(MODEL, T0 + 60)
    assert second.rollback is not None and second.rollback["kind"] == "canary_promote"
    assert registry.aliases[(MODEL, "champion")] == "2"
    assert [d.source for d in vigil.store.deploys(MODEL)][-1] == "promotion"
    assert "canary.promote.done" in audit(vigil)
    third = vigil.run_cycle(MODEL, T0 + 120)
    assert third.canary is None  # the challenger is the champion now: nothing to compare


def test_the_api_serves_the_verdict_table(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_TOKEN", "canary-api-token-5d1e")
    cfg = make_config(tmp_path, api={"token": "${VIGIL_TEST_TOKEN}"},
                      models=[model_config(canary={"alias": "challenger"}), model_config("other")])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(p99_challenger=0.16), registry=registry)
    vigil.run_cycle(MODEL, T0)
    client = TestClient(create_app(vigil), headers={"Authorization": "Bearer canary-api-token-5d1e"})
    body = client.get(f"/v1/models/{MODEL}/canary").json()
    (verdict,) = body["verdicts"]
    assert (verdict["overall"], verdict["champion_version"], verdict["challenger_version"]) == ("fail", "1", "2")
    p99 = next(m for m in verdict["metrics"] if m["metric"] == "p99_latency")
    assert p99["verdict"] == "fail" and p99["effect"] > 0.5 and p99["p_value"] < 0.05
    assert p99["fail_effect"] == 0.1 and p99["n_challenger"] >= 10
    assert body["runs"][0]["status"] == "pulled"
    missing = client.get("/v1/models/other/canary")
    assert missing.status_code == 404 and "models[].canary" in missing.text


def test_a_pull_through_kserve_pins_canary_traffic_to_the_champion(tmp_path):
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import KSERVE, NS, inference_service, kserve_status

    with FakeKubeApi() as kube:
        kube.put_object(inference_service(uri="s3://models/recommender/2", canary=10))
        serving = {"kind": "kserve", "namespace": NS, "name": "recommender", "api_url": kube.url,
                   "storage_uri_template": "s3://models/{registry}/{version}"}
        cfg = make_config(tmp_path, models=[model_config(canary={"alias": "challenger"}, serving=serving)])
        registry = serving_registry(versions=("1", "2"))
        registry.aliases[(MODEL, "challenger")] = "2"
        vigil = make_vigil(cfg, prometheus=prometheus(p99_challenger=0.16), registry=registry)
        first = vigil.run_cycle(MODEL, T0)
        # The alias is gone and the patch is in; KServe has not reconciled yet, so the intent waits.
        assert first.rollback is not None and first.rollback["status"] == "pending"
        predictor = kube.get_object(*KSERVE, "recommender")["spec"]["predictor"]
        assert predictor["canaryTrafficPercent"] == 0
        assert (MODEL, "challenger") not in registry.aliases
        kube.controller_status(*KSERVE, "recommender",
                               kserve_status(traffic=[("prev", 100, False), ("latest", 0, True)]))
        vigil.run_cycle(MODEL, T0 + 60)
        (action,) = [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]
        assert action.status == "done" and "mlflow_challenger_alias + kserve" in action.detail
        assert len(kube.writes()) == 1  # the retry verified, it did not patch again


def test_prediction_and_feature_distributions_are_compared_by_version(tmp_path):
    import pandas as pd

    from monitor.types import Window

    cfg = make_config(tmp_path, models=[model_config(
        features=["age"], prediction_column="score",
        canary={"alias": "challenger", "version_column": "model_version", "distribution_threshold": 0.2})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(), registry=registry)
    m, policy = cfg.model(MODEL), cfg.policy_for(cfg.model(MODEL))
    r = np.random.default_rng(5)

    def rows(version: str, n: int, score_shift: float) -> pd.DataFrame:
        return pd.DataFrame({"age": r.normal(40, 10, n), "score": r.beta(2, 5, n) + score_shift,
                             "model_version": version})

    w = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)
    samples = pd.concat([rows("1", 2000, 0.0), rows("2", 400, 0.3)], ignore_index=True)
    judged = vigil.canary.judge(m, w, policy, samples)
    assert judged is not None
    by_metric = {v.metric: v for v in judged.verdict.metrics if v.kind == "distribution"}
    assert by_metric["score"].verdict == "fail" and "psi" in by_metric["score"].reason
    assert by_metric["age"].verdict == "pass"
    assert (by_metric["score"].n_champion, by_metric["score"].n_challenger) == (2000, 400)
    assert any(f.entity == "score" and f.statistic == "distribution" for f in judged.findings)
    few = pd.concat([rows("1", 2000, 0.0), rows("2", 20, 0.3)], ignore_index=True)
    judged = vigil.canary.judge(m, w, policy, few)
    assert judged is not None
    assert {v.verdict for v in judged.verdict.metrics if v.kind == "distribution"} == {"inconclusive"}
    # Posted to the API with the version as a JSON number, one record without it: pandas makes
    # the column float, and 2.0 is still version "2", not an unknown one.
    posted = [(T0 - 60, {"age": float(rec["age"]), "score": float(rec["score"]), "model_version": int(version)})
              for version, frame in (("1", rows("1", 2000, 0.0)), ("2", rows("2", 400, 0.3)))
              for rec in frame.to_dict("records")] + [(T0 - 60, {"age": 41.0, "score": 0.3})]
    judged = vigil.canary.judge(m, w, policy, records_frame(posted))
    assert judged is not None
    assert {v.metric: v.verdict for v in judged.verdict.metrics if v.kind == "distribution"}["score"] == "fail"


def test_a_dry_run_policy_records_the_pull_once_and_moves_nothing(tmp_path):
    cfg = make_config(tmp_path, policy={"rollback": {"dry_run": True}},
                      models=[model_config(canary={"alias": "challenger"})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(p99_challenger=0.16), registry=registry)
    for k in range(3):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    assert registry.aliases[(MODEL, "challenger")] == "2"
    (action,) = [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]
    assert action.status == "dry_run" and action.dry_run
    with vigil.store.tx() as s:
        assert runs(s, MODEL)[0].status == "dry_run"


def test_once_the_challenger_is_gone_the_dashboard_shows_no_canary_verdict(tmp_path):
    """After a pull (or a promotion) no canary runs, yet the "Canary verdict" stat kept the
    pulled challenger's red "fail" and its per-metric lines ran flat forever. Now the
    verdict says "no challenger" (-1) and the per-metric series are gone."""
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    vigil.run_cycle(MODEL, T0)
    assert metric_value(vigil, "vigil_canary_verdict", model=MODEL, metric="_overall") == 3
    assert (MODEL, "challenger") not in registry.aliases  # pulled
    vigil.run_cycle(MODEL, T0 + 60)
    exported = {(s.name, s.labels.get("metric"), s.value) for f in vigil.metrics.registry.collect()
                for s in f.samples if s.name.startswith("vigil_canary_")
                and not s.name.startswith("vigil_canary_actions") and s.labels.get("model") == MODEL}
    assert exported == {("vigil_canary_verdict", "_overall", -1.0)}
    assert metric_value(vigil, "vigil_canary_actions_total", model=MODEL, kind="canary_pull", status="done") == 1


def test_a_new_champion_starts_the_run_of_passes_again(tmp_path):
    """Passes against one champion say nothing of the challenger against another. The
    streak used to carry over a champion change (a rollback, a deploy), so after 2 passes
    against v1 a single pass against the new champion v3 auto-promoted v2 over v3."""
    prom = prometheus()
    for q, level in ((CTR_QUERY, 0.05), (P99_QUERY, 0.1)):
        prom.curves[with_matcher(q, "model_version", "3")] = wiggle(level, 7.0)
    vigil, registry = build(tmp_path, prom, promote_after_cycles=3, auto_promote=True)
    registry.add_version(MODEL, "3", created_at=T0 - 30 * 86400)
    for k in range(2):
        assert str(vigil.run_cycle(MODEL, T0 + 60 * k).canary.overall) == "pass"
    registry.aliases[(MODEL, "champion")] = "3"  # the champion changed under the running canary
    third = vigil.run_cycle(MODEL, T0 + 120)
    assert third.canary is not None and str(third.canary.overall) == "pass"
    assert third.rollback is None and registry.aliases[(MODEL, "champion")] == "3"
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert (run.status, run.pass_streak) == ("running", 1)
    for k in range(3, 5):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    assert registry.aliases[(MODEL, "champion")] == "2"  # three passes against v3: promoted


def test_a_promotion_that_gave_up_leaves_the_challenger_judged_and_pulled_when_it_fails(tmp_path):
    """A promotion still pending (MLflow refusing the move) marked the run "promoted"; when
    the intent then gave up, the run stayed "promoted" though nothing had moved, and the
    challenger still taking traffic was never pulled again however badly it failed."""
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "rollback": {"max_attempts": 2}},
                      models=[model_config(canary={"alias": "challenger", "window": "1h",
                                                   "promote_after_cycles": 1, "auto_promote": True})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    registry.fail_set_alias = "connection reset by peer"
    prom = prometheus()
    vigil = make_vigil(cfg, prometheus=prom, registry=registry)
    first = vigil.run_cycle(MODEL, T0)
    assert first.rollback is not None and (first.rollback["kind"], first.rollback["status"]) == (
        "canary_promote", "pending")
    prom.curves[with_matcher(P99_QUERY, "model_version", "2")] = wiggle(0.16, 5.0)  # now it is slower
    second = vigil.run_cycle(MODEL, T0 + 60)  # the promotion gives up (2 attempts), the challenger fails
    (promote,) = [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_promote"]
    assert promote.status == "failed" and registry.aliases[(MODEL, "champion")] == "1"
    assert second.canary is not None and second.canary.overall == "fail"
    assert (MODEL, "challenger") not in registry.aliases  # pulled
    with vigil.store.tx() as s:
        assert runs(s, MODEL)[0].status == "pulled"


def _moving_between_judge_and_act(vigil, registry, alias: str, version: str) -> None:
    """`alias` moves to `version` after the cycle judged the canary, before it acts."""
    real_act = vigil.canary.act

    def act(*args: Any, **kwargs: Any) -> Any:
        registry.aliases[(MODEL, alias)] = version
        return real_act(*args, **kwargs)

    vigil.canary.act = act


def test_a_pull_removes_only_the_challenger_that_was_judged(tmp_path):
    """The pull's compare-and-set was on whatever the alias served when the pull was asked:
    a new challenger (v3) set between the verdict on v2 and the pull lost its alias
    without ever being judged."""
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    registry.add_version(MODEL, "3", created_at=T0 - 86400)
    _moving_between_judge_and_act(vigil, registry, "challenger", "3")
    report = vigil.run_cycle(MODEL, T0)
    assert report.canary is not None and report.canary.overall == "fail"
    assert registry.aliases[(MODEL, "challenger")] == "3"  # left alone
    assert report.rollback is not None and report.rollback["status"] == "refused"
    assert "'challenger' serves v3, not v2" in report.rollback["detail"]


def test_a_promotion_replaces_only_the_champion_it_was_judged_against(tmp_path):
    """A champion moved (v3) between the verdict against v1 and the promotion was replaced
    by the challenger, which had never been compared with it."""
    vigil, registry = build(tmp_path, prometheus(), promote_after_cycles=1, auto_promote=True)
    registry.add_version(MODEL, "3", created_at=T0 - 86400)
    _moving_between_judge_and_act(vigil, registry, "champion", "3")
    report = vigil.run_cycle(MODEL, T0)
    assert report.rollback is not None and report.rollback["status"] == "refused"
    assert registry.aliases[(MODEL, "champion")] == "3"
    assert "'champion' serves v3, not v1" in report.rollback["detail"]


def test_a_rollback_in_flight_defers_the_pull_instead_of_marking_it_done(tmp_path):
    """A failing challenger while the champion's own rollback was still in flight got that
    rollback's "pending" back; the run was marked "pulled" though no pull had been asked,
    and the challenger kept its traffic for good. Now the pull is asked again next cycle."""
    from monitor.cycle.rollback_ask import RollbackAsk

    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    registry.add_version(MODEL, "0", created_at=T0 - 60 * 86400)
    registry.fail_set_alias = "503 Service Unavailable"  # the champion's rollback stays pending
    m = vigil.config.model(MODEL)
    ask = RollbackAsk(m, "0", "incident 1", "alice", None, T0 - 30, max_attempts=5)
    assert vigil.canary.runner.request(ask).status == "pending"
    first = vigil.run_cycle(MODEL, T0)
    assert first.canary is not None and first.canary.overall == "fail"
    assert registry.aliases[(MODEL, "challenger")] == "2"  # not pulled: one action at a time
    with vigil.store.tx() as s:
        assert runs(s, MODEL)[0].status == "running"
    registry.fail_set_alias = None  # the rollback finishes (v0 serves); the challenger still fails
    for q, level in ((CTR_QUERY, 0.05), (P99_QUERY, 0.1)):
        vigil.prometheus.curves[with_matcher(q, "model_version", "0")] = wiggle(level, 3.0)
    second = vigil.run_cycle(MODEL, T0 + 60)
    assert registry.aliases[(MODEL, "champion")] == "0"
    assert second.canary is not None and second.canary.overall == "fail"
    assert (MODEL, "challenger") not in registry.aliases  # pulled now
    with vigil.store.tx() as s:
        assert runs(s, MODEL)[0].status == "pulled"


def test_points_of_a_compound_range_are_one_range_apart(tmp_path):
    """A KPI over `[1h30m]` was sampled every 60 s: 361 overlapping points per version over
    6 h went into the U test as if independent (a good challenger pulled on noise)."""
    kpi = "sum(rate(clicks_total[1h30m]))"
    prom = StubPrometheus({with_matcher(kpi, "model_version", v): wiggle(0.05, s) for v, s in (("1", 3.0), ("2", 5.0))})
    cfg = make_config(tmp_path, models=[model_config(kpis=[{"name": "clicks", "query": kpi}], slos=[],
                                                     canary={"alias": "challenger", "window": "6h"})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    report = make_vigil(cfg, prometheus=prom, registry=registry).run_cycle(MODEL, T0)
    assert report.canary is not None
    (clicks,) = report.canary.metrics
    assert clicks.n_champion <= 5 and clicks.verdict == "inconclusive"  # 6 h / 90 min: too few to judge


def test_a_pull_recorded_in_dry_run_happens_once_dry_run_is_off(tmp_path):
    """The usual rollout: dry_run first, then off. The challenger the dry run recorded
    ("dry_run") was never pulled afterwards, however many cycles it kept failing."""
    def vigil_with(dry_run: bool, registry):
        cfg = make_config(tmp_path, policy={"rollback": {"dry_run": dry_run}},
                          models=[model_config(canary={"alias": "challenger"})])
        return make_vigil(cfg, prometheus=prometheus(p99_challenger=0.16), registry=registry)

    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    dry = vigil_with(True, registry)
    dry.run_cycle(MODEL, T0)
    assert registry.aliases[(MODEL, "challenger")] == "2"
    dry.close()
    live = vigil_with(False, registry)
    report = live.run_cycle(MODEL, T0 + 60)
    assert report.canary is not None and report.canary.overall == "fail"
    assert (MODEL, "challenger") not in registry.aliases
    with live.store.tx() as s:
        assert runs(s, MODEL)[0].status == "pulled"


class ZeroFilled(StubPrometheus):
    """`... or on() vector(0)` as Prometheus answers it: 0 at every step for a version
    (or a label) that has no series, instead of no data."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Any]:
        if query not in self.curves and query.endswith("or on() vector(0)"):
            self.curves[query] = lambda ts: np.zeros(len(ts))
        return super().query_range(query, start, end, step, name=name)


def test_a_zero_filled_query_is_not_read_as_the_challenger_scoring_zero(tmp_path):
    """With `or on() vector(0)` a challenger without series (no traffic yet, or the version
    label missing from the metric) scores 0 at every step: the CTR "fell by 100 %" and
    the challenger was pulled (an error rate would have passed and been promoted). A
    query that answers for a version that does not exist is inconclusive, saying why."""
    ctr = "sum(rate(clicks_total[5m])) / sum(rate(impressions_total[5m])) or on() vector(0)"
    prom = ZeroFilled({with_matcher(ctr, "model_version", "1"): wiggle(0.05, 3.0)})
    cfg = make_config(tmp_path, models=[model_config(kpis=[{"name": "ctr", "query": ctr}], slos=[],
                                                     canary={"alias": "challenger"})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prom, registry=registry)
    for t in (T0, T0 + 60):
        report = vigil.run_cycle(MODEL, t)
        assert report.canary is not None
        (verdict,) = report.canary.metrics
        assert verdict.verdict == "inconclusive" and "does not exist" in verdict.reason
    assert registry.aliases[(MODEL, "challenger")] == "2"  # not pulled
    probes = [q for q, _, _ in prom.calls if "vigil-no-such-version" in q]
    assert len(probes) == 1, "the query's text answers it: asked once, not every cycle"


@pytest.mark.parametrize("field", ["kpi", "traffic_query"])
def test_a_query_the_version_label_cannot_be_added_to_is_inconclusive_not_a_dead_cycle(tmp_path, field):
    """A typo in a KPI (or the traffic query) raised out of the canary: the model's whole
    cycle failed, its SLO and drift alerts with it, every cycle."""
    bad = 'sum(rate(clicks_total{model="recommender"[5m]))'
    canary: dict[str, Any] = {"alias": "challenger"}
    kpis = [{"name": "ctr", "query": bad if field == "kpi" else CTR_QUERY}]
    if field == "traffic_query":
        canary["traffic_query"] = bad
    cfg = make_config(tmp_path, models=[model_config(kpis=kpis, canary=canary)])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    report = make_vigil(cfg, prometheus=prometheus(), registry=registry).run_cycle(MODEL, T0)
    assert report.canary is not None and report.canary.overall == "inconclusive"
    reasons = {m.metric: m.reason for m in report.canary.metrics}
    assert "unclosed '{'" in reasons["ctr"]
    if field == "traffic_query":
        assert "challenger traffic unknown" in reasons["p99_latency"]


def test_setting_auto_promote_after_a_suggestion_promotes_as_the_suggestion_says(tmp_path):
    """The suggestion says "... or set canary.auto_promote"; once it had been made, setting
    auto_promote did nothing: the run was "suggested", and only "running" ones were promoted."""
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"

    def vigil_with(auto_promote: bool):
        cfg = make_config(tmp_path, models=[model_config(canary={
            "alias": "challenger", "window": "1h", "promote_after_cycles": 2, "auto_promote": auto_promote})])
        return make_vigil(cfg, prometheus=prometheus(), registry=registry)

    suggesting = vigil_with(False)
    for k in range(2):
        suggesting.run_cycle(MODEL, T0 + 60 * k)
    with suggesting.store.tx() as s:
        assert runs(s, MODEL)[0].status == "suggested"
    suggesting.close()
    report = vigil_with(True).run_cycle(MODEL, T0 + 120)
    assert report.rollback is not None and report.rollback["kind"] == "canary_promote"
    assert registry.aliases[(MODEL, "champion")] == "2"


def test_a_pending_pull_of_a_canary_removed_from_the_config_ends_instead_of_blocking_rollbacks(tmp_path):
    """A pull still pending (MLflow refusing) when `canary:` was removed from the model: its
    layers could not be built, reconcile raised every cycle, and the intent stayed pending
    for good: the champion's own rollbacks answered "still in flight" forever."""
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))

    def refused(name: str, alias: str) -> None:
        raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "connection refused")

    registry.delete_alias = refused  # type: ignore[method-assign]
    assert vigil.run_cycle(MODEL, T0).rollback["status"] == "pending"
    vigil.close()
    without = make_vigil(make_config(tmp_path, models=[model_config()]), prometheus=prometheus(), registry=registry)
    without.run_cycle(MODEL, T0 + 60)
    assert not without.rollbacks.in_flight(MODEL)
    (pull,) = [a for a in without.store.actions(model=MODEL) if a.kind == "canary_pull"]
    assert pull.status == "failed" and "no canary configured" in pull.detail


def test_samples_naming_the_registry_version_are_compared_when_the_metric_label_is_v_prefixed(tmp_path):
    """With `version_value: "v{version}"` (the serving layer labels its metrics v2), samples
    whose version column holds the registry's version ("2", as MLflow and the performance
    join write it) matched no version: every feature stayed inconclusive on "0 samples".
    Either form now counts."""
    import pandas as pd

    from monitor.types import Window

    cfg = make_config(tmp_path, models=[model_config(
        features=["age"], prediction_column="score",
        canary={"alias": "challenger", "version_column": "model_version", "version_value": "v{version}",
                "distribution_threshold": 0.2})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(), registry=registry)
    m, policy = cfg.model(MODEL), cfg.policy_for(cfg.model(MODEL))
    r = np.random.default_rng(7)
    w = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)
    for champion, challenger in (("1", "2"), ("v1", "v2")):
        samples = pd.concat([pd.DataFrame({"age": r.normal(40, 10, n), "score": r.beta(2, 5, n) + shift,
                                           "model_version": version})
                             for version, n, shift in ((champion, 2000, 0.0), (challenger, 400, 0.3))],
                            ignore_index=True)
        judged = vigil.canary.judge(m, w, policy, samples)
        assert judged is not None
        by_metric = {v.metric: v for v in judged.verdict.metrics if v.kind == "distribution"}
        assert (by_metric["score"].n_champion, by_metric["score"].n_challenger) == (2000, 400), champion
        assert by_metric["score"].verdict == "fail"


class _ChallengerFromAPartialAnswer(StubPrometheus):
    """The challenger's series come from an answer a store missed (Thanos `warnings`)."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Any]:
        found = super().query_range(query, start, end, step, name=name)
        if 'model_version="2"' not in query:
            return found
        return [dataclasses.replace(s, partial="store 10.0.3.7:10901: connection refused") for s in found]


def test_a_challenger_read_from_a_partial_answer_is_not_pulled_on_it(tmp_path):
    """60 % slower, but read while a store was down: half its fast requests may be missing.
    No automatic pull on that; the verdict says why it is not judged."""
    curves = prometheus(p99_challenger=0.16).curves
    vigil, registry = build(tmp_path, _ChallengerFromAPartialAnswer(curves))
    report = vigil.run_cycle(MODEL, T0)

    assert report.canary is not None and report.canary.overall == "inconclusive"
    reasons = {m.metric: m.reason for m in report.canary.metrics}
    assert "read from a partial answer: store 10.0.3.7:10901" in reasons["p99_latency"]
    assert registry.aliases[(MODEL, "challenger")] == "2"  # not pulled
    assert not [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]


class _ChallengerStoreDown(StubPrometheus):
    """The store holding the challenger's series is down: no series for it, and a warning."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Any]:
        if 'model_version="2"' not in query:
            return super().query_range(query, start, end, step, name=name)
        return Answer.of((), "store 10.0.3.7:10901: connection refused")


def test_a_challenger_whose_store_is_down_is_said_so_not_said_to_have_no_series(tmp_path):
    """"no series for this version" sends people to the version label; the store was down."""
    vigil, registry = build(tmp_path, _ChallengerStoreDown(prometheus(p99_challenger=0.16).curves))
    report = vigil.run_cycle(MODEL, T0)
    assert report.canary is not None and report.canary.overall == "inconclusive"
    reasons = {m.metric: m.reason for m in report.canary.metrics}
    assert "read from a partial answer: store 10.0.3.7:10901" in reasons["p99_latency"], reasons
    assert registry.aliases[(MODEL, "challenger")] == "2"  # not pulled
