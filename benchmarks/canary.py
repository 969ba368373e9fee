"""Canary analysis through the real cycle: simulated canaries, a real Prometheus, a real
MLflow registry (its SQLite store), Vigil's production `run_cycle` under a replay clock.

    python -m benchmarks.canary [--cycles 8] [--seed 7] [--out DIR]

Each case is a model whose champion (v1) and challenger (v2, alias `challenger`, a share
of the traffic) write the same metrics labelled `model_version`: request and error
counters and a latency gauge. Good canaries serve like the champion; bad ones are slower
by an effect (a fraction of the champion's latency) or fail more requests; noisy ones add
noise; a low-traffic one serves almost nothing; a no-data one has its alias but no series.
Every case is backfilled with promtool into one Prometheus and judged for `--cycles`
cycles, two minutes apart, each over the last 30 minutes.

Printed per case: the verdict (pulled, promotion suggested, or the last cycle's verdict
when neither happened) and the cycles it took; the last line is

    good_rolled_back=N bad_missed=N inconclusive_no_data=N median_cycles_to_verdict=X

where a bad case is one whose effect is at or above the configured `fail_effect`
(below-effect cases are printed but not counted as bad).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.clock import ReplayClock
from monitor.config import MlflowConfig, VigilConfig, parse_config
from monitor.replay.local_prometheus import LocalPrometheus
from monitor.replay.openmetrics import OpenMetricsWriter
from monitor.sources.registry import RegistrySource
from monitor.store.canary import runs
from monitor.store.repository import Store
from monitor.vigil import Vigil

T0 = 1_790_000_000.0  # the first cycle (2026-09-21); data start two hours before
STEP = 60.0
INTERVAL = 120.0
FAIL_EFFECT = 0.1  # the configured effect: a bad canary at or above it must be caught
PROMOTE_AFTER = 3
BASE_LATENCY = 0.2  # seconds
BASE_ERRORS = 0.01
RPS = 20.0


@dataclass(frozen=True)
class CanaryCase:
    name: str
    kind: str  # good | bad | below_effect | noisy_good | noisy_bad | low_traffic | no_data
    latency_effect: float = 0.0  # challenger latency = champion's x (1 + effect)
    error_rate: float = BASE_ERRORS  # challenger's
    noise: float = 0.05  # log-normal sigma of the latency gauge, both versions
    share: float = 0.1  # challenger's share of the traffic

    @property
    def bad(self) -> bool:
        return self.kind in ("bad", "noisy_bad")


CASES = (
    CanaryCase("good-1", "good"),
    CanaryCase("good-2", "good", latency_effect=-0.05),
    CanaryCase("good-3", "good", share=0.3),
    CanaryCase("bad-latency-20", "bad", latency_effect=0.2),
    CanaryCase("bad-latency-40", "bad", latency_effect=0.4),
    CanaryCase("bad-latency-80", "bad", latency_effect=0.8),
    CanaryCase("bad-errors-8pct", "bad", error_rate=0.08),
    CanaryCase("below-effect-5", "below_effect", latency_effect=0.05),
    CanaryCase("noisy-good", "noisy_good", noise=0.3),
    CanaryCase("noisy-bad-50", "noisy_bad", latency_effect=0.5, noise=0.3),
    CanaryCase("low-traffic", "low_traffic", share=0.002),
    CanaryCase("no-data", "no_data"),
)


@dataclass
class CaseResult:
    case: CanaryCase
    verdict: str  # pulled | promotion_suggested | pass | marginal | fail | inconclusive
    cycles: int | None  # cycles to a pull or a suggestion; None when neither happened
    detail: str


def err_query(model: str) -> str:
    return (f'sum(rate(canary_errors_total{{model="{model}"}}[5m]))'
            f' / sum(rate(canary_requests_total{{model="{model}"}}[5m]))')


def model_entry(case: CanaryCase) -> dict[str, Any]:
    m = case.name
    return {
        "name": m, "alias": "champion",
        "slos": [{"name": "error_rate", "query": err_query(m), "threshold": 0.5},
                 {"name": "latency", "query": f'avg(canary_latency_seconds{{model="{m}"}})', "threshold": 10,
                  "unit": "s"}],
        "canary": {"alias": "challenger", "version_label": "model_version", "fail_effect": FAIL_EFFECT,
                   "marginal_effect": FAIL_EFFECT / 2, "alpha": 0.01, "min_points": 10,
                   "traffic_query": f'sum(rate(canary_requests_total{{model="{m}"}}[5m]))', "min_traffic": 0.2,
                   "window": "1h", "promote_after_cycles": PROMOTE_AFTER,
                   "metrics": {"error_rate": {"fail_above": 0.05}}},
    }


def make_config(cases: tuple[CanaryCase, ...], workdir: Path, prom_url: str, mlflow_uri: str) -> VigilConfig:
    return parse_config({
        "sources": {"prometheus": {"url": prom_url, "step": "60s"}, "mlflow": {"tracking_uri": mlflow_uri}},
        "store": {"url": f"sqlite:///{workdir / 'vigil.db'}"},
        "slack": {"sink_path": str(workdir / "notifications.jsonl")},
        "schedule": {"interval": f"{int(INTERVAL)}s", "lookback": "30m", "baseline": "1h"},
        "policy": {"anomaly_threshold": 1, "resolve_after_cycles": 2},
        "models": [model_entry(c) for c in cases],
    }, "benchmarks.canary", str(workdir))


def write_metrics(cases: tuple[CanaryCase, ...], path: Path, start: float, end: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = np.arange(start, end + STEP, STEP)
    w = OpenMetricsWriter()
    for case in cases:
        for version, share in (("1", 1 - case.share), ("2", case.share)):
            if version == "2" and case.kind == "no_data":
                continue
            effect = case.latency_effect if version == "2" else 0.0
            errors = case.error_rate if version == "2" else BASE_ERRORS
            labels = {"model": case.name, "model_version": version}
            req = rng.poisson(RPS * share * STEP, len(ts)).astype(float)
            err = rng.binomial(req.astype(int), errors).astype(float)
            w.add("canary_requests_total", labels, ts, np.cumsum(req), type="counter", help="Requests")
            w.add("canary_errors_total", labels, ts, np.cumsum(err), type="counter", help="Failed requests")
            latency = BASE_LATENCY * (1 + effect) * rng.lognormal(0.0, case.noise, len(ts))
            w.add("canary_latency_seconds", labels, ts, latency, help="Median latency")
    w.write(path)


def register(registry: RegistrySource, cases: tuple[CanaryCase, ...]) -> None:
    for case in cases:
        registry.create_model(case.name)
        for _ in range(2):
            registry.create_version(case.name, f"vigil-bench:/{case.name}")
        registry.set_alias(case.name, "champion", "1")
        registry.set_alias(case.name, "challenger", "2")


def judge_cases(vigil: Vigil, registry: RegistrySource, cases: tuple[CanaryCase, ...], cycles: int
                ) -> list[CaseResult]:
    out = []
    for case in cases:
        last = "inconclusive"
        result: CaseResult | None = None
        for k in range(cycles):
            t = T0 + k * INTERVAL
            report = vigil.run_cycle(case.name, t)
            if report.canary is not None:
                last = str(report.canary.overall)
            with vigil.store.tx() as s:
                run = next((r for r in runs(s, case.name) if r.challenger_version == "2"), None)
                status = run.status if run is not None else "running"
            if status == "pulled":
                gone = registry.alias_version(case.name, "challenger") is None
                failed = [f.entity for f in report.findings if str(f.kind) == "canary_fail"]
                result = CaseResult(case, "pulled", k + 1, f"failed {', '.join(failed)}; alias removed: {gone}")
                break
            if status == "suggested":
                result = CaseResult(case, "promotion_suggested", k + 1, f"{PROMOTE_AFTER} passes in a row")
                break
        out.append(result or CaseResult(case, last, None, f"after {cycles} cycles"))
    return out


def summary(results: list[CaseResult]) -> str:
    good_pulled = sum(1 for r in results if not r.case.bad and r.case.kind != "no_data" and r.verdict == "pulled")
    bad_missed = sum(1 for r in results if r.case.bad and r.verdict != "pulled")
    no_data = sum(1 for r in results if r.case.kind == "no_data" and r.verdict == "inconclusive")
    taken = [r.cycles for r in results if r.cycles is not None]
    median = statistics.median(taken) if taken else float("nan")
    return (f"good_rolled_back={good_pulled} bad_missed={bad_missed} inconclusive_no_data={no_data} "
            f"median_cycles_to_verdict={median:g}")


def run(cases: tuple[CanaryCase, ...], workdir: Path, *, cycles: int, seed: int) -> list[CaseResult]:
    start, end = T0 - 2 * 3600, T0 + cycles * INTERVAL
    write_metrics(cases, workdir / "metrics.om", start, end, seed)
    mlflow_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    registry = RegistrySource(MlflowConfig(tracking_uri=mlflow_uri))
    register(registry, cases)
    with LocalPrometheus(workdir / "metrics.om", workdir / "prom") as prom:
        assert prom.url is not None  # set once started
        config = make_config(cases, workdir, prom.url, mlflow_uri)
        vigil = Vigil(config, clock=ReplayClock(T0), store=Store(config.store.url), registry=registry)
        return judge_cases(vigil, registry, cases, cycles)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.canary", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=8, help="cycles per case (default 8)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="keep the work files here (default: a temp dir)")
    args = ap.parse_args(argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vigil-canary-") as tmp:
        workdir = args.out or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = run(CASES, workdir, cycles=args.cycles, seed=args.seed)
    for r in results:
        cycles = "-" if r.cycles is None else str(r.cycles)
        print(f"{r.case.name:<18} {r.case.kind:<13} verdict={r.verdict:<20} cycles={cycles:<3} {r.detail}")
    print(f"# {len(results)} cases x up to {args.cycles} cycles in {time.perf_counter() - began:.1f} s")
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
