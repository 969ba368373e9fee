"""A champion deployed at the onset and a challenger failing its canary in the same window
score the same (0.9: a deploy at onset with the model's KPI down; the canary cause). The
tie went to the deploy (ties go to the more recent deploy, and the canary cause has none),
so a critical incident caused by the challenger's share of traffic rolled the CHAMPION
back, while the challenger was pulled as well. The canary, measured on the challenger's
own traffic against the champion's in the same window, wins the tie: the challenger is
pulled and the champion stays."""
from __future__ import annotations

from correlators.causes import CorrelationSettings, build_incident
from correlators.incident import CauseKind
from detectors.records import DeployEvent, Finding, FindingKind
from monitor.sources.promql_text import with_matcher
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
    step_curve,
)
from tests.unit.monitor.test_canary_cycle import prometheus, wiggle


def _finding(kind: FindingKind, entity: str, onset: float, **kw: object) -> Finding:
    return Finding(kind=kind, entity=entity, value=-12.0, threshold=-5.0, window_start=onset - 1800,
                   window_end=onset + 60, onset=onset, model=MODEL, statistic="s", score=0.9, **kw)  # type: ignore[arg-type]


def test_a_failed_canary_outranks_a_champion_deploy_at_the_same_score() -> None:
    onset = T0
    findings = [_finding(FindingKind.KPI_DROP, "ctr", onset),
                _finding(FindingKind.CANARY_FAIL, "ctr", onset,
                         evidence={"challenger_version": "2", "champion_version": "1"})]
    deploy = DeployEvent(MODEL, "champion", "1", "0", onset, "registry")
    incident = build_incident(MODEL, findings, [deploy], window_start=onset - 1800, window_end=onset + 60,
                              settings=CorrelationSettings())
    assert incident is not None
    scores = {c.kind: round(c.score, 6) for c in incident.causes}
    assert scores[CauseKind.DEPLOY] == scores[CauseKind.CANARY]  # the tie this is about
    assert incident.top_cause is not None and incident.top_cause.kind == CauseKind.CANARY, incident.causes


def test_a_challengers_failure_pulls_the_challenger_and_never_rolls_the_fresh_champion_back(tmp_path) -> None:
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 1},
                      models=[model_config(canary={"alias": "challenger", "window": "1h"})])
    reg = serving_registry(version="0", versions=("0", "1", "2"))
    prom = prometheus(p99_challenger=0.16)
    # The model's whole traffic breaches its SLO and loses CTR from T0 - 290 (the challenger's
    # share), inside the onset's slack of the champion's deploy, which the poll dates at T0.
    prom.curves[CTR_QUERY] = step_curve(0.05, 0.045, T0 - 290)
    prom.curves[P99_QUERY] = step_curve(0.1, 0.8, T0 - 290)
    prom.curves[with_matcher(CTR_QUERY, "model_version", "1")] = wiggle(0.05, 3.0)
    vigil = make_vigil(cfg, prometheus=prom, registry=reg)
    vigil.run_cycle(MODEL, T0 - 120)  # v0 serves, no challenger
    reg.aliases[(MODEL, "champion")] = "1"  # the champion is deployed, and a challenger starts with it
    reg.aliases[(MODEL, "challenger")] = "2"
    report = vigil.run_cycle(MODEL, T0)
    vigil.run_cycle(MODEL, T0 + 60)  # the challenger is gone; the incident's story still has its failure
    assert report.canary is not None and str(report.canary.overall) == "fail"
    row = vigil.store.incident(report.incident_id)
    assert row is not None and row.severity == "critical"
    assert row.causes[0]["kind"] == "canary", [(c["kind"], c["score"]) for c in row.causes]
    assert (MODEL, "challenger") not in reg.aliases  # pulled
    assert reg.aliases[(MODEL, "champion")] == "1", reg.moves  # the champion stays
    assert [a.kind for a in vigil.store.actions(model=MODEL) if a.status == "done"] == ["canary_pull"]
