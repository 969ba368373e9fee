"""A challenger pulled, then set on the challenger alias again by a person (serving fixed,
say), was pulled again in the next cycle on the evidence that had pulled it: the labelled
window of its predictions before the pull (still in the performance horizon, up to a day),
or its KPI and SLO points before the pull (still in the canary window). Evidence from
before the version's pull is no ground to pull it again (its realised drop still holds
promotion); what it serves after the pull is, judged as a first challenger is."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.cycle import canary_pull
from monitor.sources.promql_text import with_matcher
from monitor.store.canary import runs
from monitor.types import Window
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)
from tests.unit.monitor.test_canary_cycle import build, prometheus
from tests.unit.monitor.test_canary_performance_hold import _canary_with_labels
from tests.unit.monitor.test_performance_cycle import INGEST, H, _hour, _labels


def _pulls(vigil) -> list[str]:
    return [a.status for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]


def test_a_pulled_challenger_set_again_is_not_pulled_again_on_its_old_labels(tmp_path: Path) -> None:
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    vigil.run_cycle(MODEL, T0 + 60)
    assert (MODEL, "challenger") not in registry.aliases and _pulls(vigil) == ["done"]

    registry.aliases[(MODEL, "challenger")] = "2"  # a person puts it back
    for k in range(2, 5):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        # the old window is still in the horizon, shown as it is ...
        assert any(f.kind == "performance_drop" and f.evidence["version"] == "2" for f in report.findings)
    # ... but not judged again as grounds for a pull
    assert registry.aliases.get((MODEL, "challenger")) == "2", "pulled again on the labels that pulled it"
    assert _pulls(vigil) == ["done"]
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
    assert run.status == "running" and run.pass_streak == 0  # held from promotion all the same
    assert "not promoted" in run.detail and "before its pull" in run.detail, run.detail


def _bad_hour_after_the_pull(tmp_path: Path, vigil: Any) -> None:
    """An hour of v2's predictions after its pull (T0 + 1 h), as bad as before, labelled by T0 + 2 h."""
    path = tmp_path / "samples" / "predictions.csv"
    fresh = pd.concat([_hour(T0 + H, 300, 0.9, 601), _hour(T0 + H, 300, 0.55, 602).assign(model_version="2")],
                      ignore_index=True)
    rows = pd.read_csv(path, dtype={"prediction_id": str})
    pd.concat([rows, fresh.drop(columns="_truth")], ignore_index=True).to_csv(path, index=False)
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    r = client.post("/v1/labels", json={"model": MODEL, "labels": _labels(fresh, T0 + 2 * H)},
                    headers={"Authorization": f"Bearer {INGEST}"})
    assert r.status_code == 202


def test_a_pulled_challenger_set_again_is_pulled_on_its_new_labels(tmp_path: Path) -> None:
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    vigil.run_cycle(MODEL, T0 + 60)
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil.run_cycle(MODEL, T0 + 120)
    assert registry.aliases.get((MODEL, "challenger")) == "2"

    _bad_hour_after_the_pull(tmp_path, vigil)
    vigil.run_cycle(MODEL, T0 + 2 * H + 60)
    assert (MODEL, "challenger") not in registry.aliases, "a challenger bad again kept its traffic"
    assert _pulls(vigil) == ["done", "done"]


def _fixed_after_its_pull(back_at: float) -> StubPrometheus:
    """v2 60 % slower until its pull at T0 (its 5-minute rates run on 5 minutes more), no
    series while it serves nothing, and as fast as v1 once a person sets it again at `back_at`."""
    prom = prometheus()

    def curve(was: Any, slower: float) -> Any:
        return lambda ts: np.where(ts <= T0 + 300, was(ts) * slower, np.where(ts < back_at, np.nan, was(ts)))

    for query, slower in ((with_matcher(P99_QUERY, "model_version", "2"), 1.6),
                          (with_matcher(CTR_QUERY, "model_version", "2"), 1.0)):
        prom.curves[query] = curve(prom.curves[query], slower)
    return prom


def test_a_challenger_pulled_on_its_latency_and_set_again_fixed_is_not_pulled_on_its_old_points(
        tmp_path: Path) -> None:
    """Its series from before the pull stayed in the canary window (1 h): set again fixed 20
    minutes after its pull, it was pulled again in the next cycle, and in every cycle for
    the 40 minutes after, on the points that had pulled it."""
    vigil, registry = build(tmp_path, _fixed_after_its_pull(T0 + 1200))
    vigil.run_cycle(MODEL, T0)
    assert (MODEL, "challenger") not in registry.aliases and _pulls(vigil) == ["done"]

    registry.aliases[(MODEL, "challenger")] = "2"
    verdicts = [vigil.run_cycle(MODEL, T0 + 1200 + 300 * k).canary for k in range(1, 13)]
    assert registry.aliases.get((MODEL, "challenger")) == "2", "pulled again on the points that pulled it"
    assert _pulls(vigil) == ["done"]
    assert all(v is not None and v.overall in ("inconclusive", "pass") for v in verdicts)
    assert verdicts[-1] is not None and verdicts[-1].overall == "pass"  # judged on its own points since
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
    assert run.status == "running" and run.pass_streak >= 1


def test_a_challenger_set_again_is_not_judged_on_its_samples_from_before_its_pull(tmp_path: Path) -> None:
    """Its predictions before the pull (shifted) were still in the cycle's samples: set again
    with its predictions fixed, its distributions failed on the old rows and pulled it."""
    cfg = make_config(tmp_path, models=[model_config(
        features=["age"], prediction_column="score",
        canary={"alias": "challenger", "version_column": "model_version", "distribution_threshold": 0.2})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(p99_challenger=0.16), registry=registry)
    pulled = T0 - 1200
    vigil.run_cycle(MODEL, pulled)
    assert (MODEL, "challenger") not in registry.aliases
    registry.aliases[(MODEL, "challenger")] = "2"
    r = np.random.default_rng(5)

    def rows(version: str, n: int, shift: float, start: float, end: float) -> pd.DataFrame:
        return pd.DataFrame({"age": r.normal(40, 10, n), "score": r.beta(2, 5, n) + shift, "model_version": version,
                             "_ts": np.linspace(start, end, n)})

    samples = pd.concat([rows("1", 4000, 0.0, T0 - 1800, T0), rows("2", 400, 0.3, T0 - 1800, pulled - 1),
                         rows("2", 400, 0.0, pulled + 300, T0)], ignore_index=True)
    m, policy = cfg.model(MODEL), cfg.policy_for(cfg.model(MODEL))
    judged = vigil.canary.judge(m, Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800),
                                policy, samples)
    assert judged is not None
    score = {v.metric: v for v in judged.verdict.metrics if v.kind == "distribution"}["score"]
    assert score.verdict == "pass", score.reason
    assert score.n_challenger == 400  # its rows since the pull only


def test_a_challenger_pulled_twice_on_its_labels_and_set_again_is_pulled_at_once(tmp_path: Path) -> None:
    """A pipeline putting the version back after each pull: from its second pull within a day,
    the labels that pulled it count again (as its KPI points do), so the re-set is pulled in
    its next cycle instead of serving until a labelled window after the pull."""
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    vigil.run_cycle(MODEL, T0 + 60)
    registry.aliases[(MODEL, "challenger")] = "2"
    _bad_hour_after_the_pull(tmp_path, vigil)
    vigil.run_cycle(MODEL, T0 + 2 * H + 60)
    assert _pulls(vigil) == ["done", "done"]

    registry.aliases[(MODEL, "challenger")] = "2"  # and back again, nothing new labelled
    vigil.run_cycle(MODEL, T0 + 2 * H + 120)
    assert (MODEL, "challenger") not in registry.aliases, "a version pulled twice today kept its share again"
    assert _pulls(vigil) == ["done", "done", "done"]


def test_a_canary_cycle_reads_its_pulls_from_the_store_once(tmp_path: Path, monkeypatch: Any) -> None:
    """Where the re-set's window starts (its latest pull, and whether it was pulled twice
    within a day) is read once per cycle: the window, the grounds of a realised drop and
    the run's detail each read it again before (6 queries where 2 say it)."""
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    vigil.run_cycle(MODEL, T0 + 60)
    registry.aliases[(MODEL, "challenger")] = "2"  # set again: all three need where it starts
    calls: list[str] = []
    for name in ("pulled_at", "pulls_since"):
        real = getattr(canary_pull, name)
        monkeypatch.setattr(canary_pull, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    vigil.run_cycle(MODEL, T0 + 120)
    assert calls == ["pulled_at", "pulls_since"]
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
    assert "before its pull" in run.detail, run.detail  # what it read is what the run says


def test_a_re_set_run_says_how_it_is_judged_once_its_pulls_age_past_a_day(tmp_path: Path) -> None:
    """Pulled twice within a day, set again once its slow points had left the window: its run
    said "judged on its whole window", and still did once the first pull was over a day old
    and its window started at its latest pull again (what it was judged on)."""
    prom = prometheus()
    slow = with_matcher(P99_QUERY, "model_version", "2")
    was = prom.curves[slow]
    prom.curves[slow] = lambda ts: np.where(ts <= T0 + 3600, was(ts) * 1.6, was(ts))  # fixed after an hour
    vigil, registry = build(tmp_path, prom)
    t = T0
    vigil.run_cycle(MODEL, t)
    registry.aliases[(MODEL, "challenger")] = "2"
    while (MODEL, "challenger") in registry.aliases and t < T0 + 3600:  # pulled again on its own points
        t += 300
        vigil.run_cycle(MODEL, t)
    assert _pulls(vigil) == ["done", "done"]

    registry.aliases[(MODEL, "challenger")] = "2"  # set again once its slow points left the window
    vigil.run_cycle(MODEL, T0 + 3 * 3600)
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
    assert run.status == "running" and "whole window" in run.detail, run.detail

    report = vigil.run_cycle(MODEL, T0 + 86_400 + 600)  # the first pull over a day old
    assert report.canary is not None and report.canary.overall == "pass"
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
    assert run.detail == "set again: judged from its pull on", run.detail
