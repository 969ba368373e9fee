"""Root-cause ranking on Nezha-format fault cases: AC@1/3/5 and Avg@5, overall and per category.

    python -m benchmarks.rca_nezha --data ../shared/data/nezha [--cases tt-0129-01,...] [--show 3]

For each case: the case's metrics, logs and traces become the records the source
clients produce (benchmarks/nezha_files.py); the log, trace and metric detectors are
fitted once on the day's normal/ data (their states are what the daemon stores), score
the case, and correlators.rca ranks the findings, as the daemon's cycle does. Only
`onset_ts` is read from labels.csv before scoring; the other label columns are used to
score and to group the figures.

Windows (fixed for every case, not fitted to labels): the logs/traces window runs
from HISTORY_GUARD_S = 60 s before the alert (the README puts the visible effect
between 57 s before and 62 s after onset) to the end of the case's data; the case's
logs and traces before that are recent history, as the daemon's rolling history would
be (LogWindow/TraceWindow history_start): every log/trace test is read against normal +
history (full weight) and history + window against normal (half weight), so what
was already going on before the alert counts less than what changed at it.
`--no-history` gives the previous behaviour (window from 90 s before the alert,
normal data only). Metrics: from max(90 s, one sample step) before to max(240 s, two
steps) after the alert (faults last about 3 minutes, and a sample may cover the period
before or after its timestamp), against normal/; the case's metrics before that are
their recent history, used when the normal period is short.

The call graph comes from the traces, joined with `graphs/<scenario>.csv` when the folder
has one (an adjacency matrix, row calls column): the ranking joins them as the daemon
joins its traces' graph with `root_cause.call_graph`. Any modality may be
empty (a system without logs or traces, a normal period without traces): the
diagnosis then says what it lacked (`what_lacked`) and its confidence drops.

`--without logs` / `--without traces` (repeatable): every case and normal period as if
the system had no such records (`NezhaFolder.without`), through the same detectors and
ranking: a proxy for systems that lack the modality. The header says what was removed.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import nezha_files as nf
from correlators import call_graph
from correlators.coverage import observed_modalities, what_lacked
from correlators.incident import Cause
from correlators.rca import RcaParams
from correlators.services import ServiceSignals, rank_services
from detectors.logs import LogDetector, LogReference, LogState, LogWindow
from detectors.records import Finding, Series
from detectors.service_metrics import (
    ServiceMetricsDetector,
    ServiceMetricsParams,
    ServiceMetricsReport,
    ServiceMetricsState,
)
from detectors.traces import ServiceGraph, TraceDetector, TraceState, TraceWindow

PRE_S = 90.0
# Logs/traces before alert - HISTORY_GUARD_S are recent history (unless --no-history).
HISTORY_GUARD_S = 60.0
HISTORY = {"on": True, "guard": HISTORY_GUARD_S}
METRIC_POST_S = 240.0


LOGS, TRACES, METRICS = LogDetector(), TraceDetector(), ServiceMetricsDetector()


@dataclass(frozen=True)
class Config:
    """The one configuration a run uses for every case of every set."""

    metrics: ServiceMetricsParams = ServiceMetricsParams()
    rca: RcaParams = RcaParams()


CONFIG = Config()


@dataclass(frozen=True)
class Baseline:
    """The detectors' fitted states for one normal period."""

    logs: LogState
    traces: TraceState
    metrics: ServiceMetricsState


# (folder, modalities removed, normal period id) -> fitted states
_BASELINES: dict[tuple[str, str, float | None, str], Baseline] = {}


def _key(folder: nf.NezhaFolder, normal_id: str) -> tuple[str, str, float | None, str]:
    # An ablated or shortened folder shares the full one's root: without what it removed
    # (or cut) in the key, it would be ranked against baselines fitted on data it lacks.
    removed = ",".join(sorted(folder.removed)) + "|" + ",".join(sorted(folder.normal_removed))
    return str(folder.root), removed, folder.normal_seconds, normal_id


def _bounds(ts: list[float]) -> tuple[float, float]:
    """A normal period's first and last time (as the log detector has always taken them)."""
    return (min(ts), max(ts)) if ts else (0.0, 1.0)


def baseline(folder: nf.NezhaFolder, normal_id: str) -> Baseline:
    """Fitted once per normal period and reused, as the daemon keeps its fitted baseline."""
    key = _key(folder, normal_id)
    if key not in _BASELINES:
        logs = nf.log_records(folder.normal_table("logs", normal_id))
        spans = nf.spans(folder.normal_table("traces", normal_id))
        series = nf.series(folder.normal_table("metrics", normal_id))
        span_bounds = _bounds([s.start_ns / 1e9 for s in spans])
        metric_bounds = _bounds([float(t) for s in series for t in s.timestamps])
        _BASELINES[key] = Baseline(LOGS.fit(LogReference(logs, spans), *_bounds([r.ts for r in logs])),
                                         TRACES.fit(spans, *span_bounds), METRICS.fit(series, *metric_bounds))
        _NORMAL_COUNTS[key] = {"metrics": len(series), "logs": len(logs), "traces": len(spans)}
    return _BASELINES[key]


_NORMAL_COUNTS: dict[tuple[str, str, float | None, str], dict[str, int]] = {}


def add_without(ap: argparse.ArgumentParser) -> None:
    """The ablation flag, the same for every RCA benchmark."""
    ap.add_argument("--without", action="append", default=[], choices=nf.REMOVABLE,
                    help="rank every case as if the system had none of this modality (repeatable)")
    ap.add_argument("--normal-seconds", type=float, default=None,
                    help="cut each normal period's logs and traces to their first N seconds "
                         "(with --no-history: a reference that saw few calls)")
    ap.add_argument("--normal-without", action="append", default=[], choices=nf.REMOVABLE,
                    help="the normal periods have none of this modality, the cases keep it (repeatable)")


def ablation_header(name: str, folder: nf.NezhaFolder) -> str:
    """One line saying what a set was ranked without, and which removals were no-ops
    (the modality had no rows there to begin with)."""
    removed, had_none = sorted(folder.removed), sorted(folder.had_none)
    text = f"{name}: without {', '.join(removed)}" if removed else f"{name}: nothing removed"
    if had_none:
        text += f" (the data have no {', '.join(had_none)}: a no-op there)"
    if folder.normal_seconds is not None:
        text += f"; normal logs/traces cut to their first {folder.normal_seconds:g} s"
    if folder.normal_removed:
        text += f"; normal periods without {', '.join(sorted(folder.normal_removed))}"
    return text


def given_graph(folder: nf.NezhaFolder, row: pd.Series) -> ServiceGraph:
    """The service map a folder gives for the case's scenario (row calls column), else empty."""
    return call_graph.given_graph(folder.graph_for(row) or ())


def metric_window(series: list, alert: float) -> tuple[float, float]:
    """From max(PRE_S, one step) before to max(METRIC_POST_S, two steps) after the alert,
    the step being the series' median sampling interval."""
    steps = [float(np.median(np.diff(s.timestamps))) for s in series if len(s.timestamps) > 1]
    step = float(np.median(steps)) if steps else 0.0
    return alert - max(PRE_S, step), alert + max(METRIC_POST_S, 2 * step)


@dataclass(frozen=True)
class CaseInputs:
    """What the log and trace detectors found for one case, and its metric series: the
    part of a case no metric or ranking setting changes (kept to try settings cheaply)."""

    alert: float
    series: list[Series]
    log_findings: list[Finding]
    trace_findings: list[Finding]
    graph: ServiceGraph  # what the traces showed
    given: ServiceGraph  # the folder's service map (joined with `graph` by the ranking)
    observed: dict[str, set[str]]
    counts: dict[str, int]  # records per modality in the case
    normal_counts: dict[str, int]
    lengths: dict[str, tuple[float, float]]  # logs/traces: seconds of the normal period and of the window
    candidates: list[str]
    seconds: float  # conversion + log and trace detectors


def case_inputs(folder: nf.NezhaFolder, row: pd.Series) -> CaseInputs:
    base = baseline(folder, folder.normal_for(row))
    t0 = time.process_time()  # CPU seconds: what one case costs one core, whatever else runs
    case_id, alert = row["case_id"], float(row["onset_ts"])
    logs = folder.case("logs", case_id)
    traces = folder.case("traces", case_id)
    metrics = folder.case("metrics", case_id)
    end = max(float(logs["timestamp_ns"].max() / 1e9) if len(logs) else alert,
              float(traces["end_ns"].max() / 1e9) if len(traces) else alert, alert + 1.0)
    start = min(float(logs["timestamp_ns"].min() / 1e9) if len(logs) else alert,
                float(traces["start_ns"].min() / 1e9) if len(traces) else alert)
    hist = HISTORY["on"]
    ws, history = alert - (HISTORY["guard"] if hist else PRE_S), start if hist else None
    records, spans, series = nf.log_records(logs), nf.spans(traces), nf.series(metrics)
    graph, tf = ServiceGraph(), []
    if spans:
        report = TRACES.assess(base.traces, TraceWindow(spans, history), ws, end)
        graph, tf = report.graph, report.findings
    lf = LOGS.score(base.logs, LogWindow(records, spans, history), ws, end) if records else []
    return CaseInputs(alert, series, lf, tf, graph, given_graph(folder, row),
                      observed_modalities(series, records, spans),
                      {"metrics": len(series), "logs": len(records), "traces": len(spans)},
                      _NORMAL_COUNTS[_key(folder, folder.normal_for(row))],
                      {"logs": (base.logs.end - base.logs.start, end - ws),
                       "traces": (base.traces.end - base.traces.start, end - ws)},
                      sorted(metrics["service"].unique()),
                      time.process_time() - t0)


def rank_case(folder: nf.NezhaFolder, row: pd.Series, inputs: CaseInputs, config: Config = CONFIG
              ) -> tuple[list[Cause], float]:
    """The metric detector and the ranking on a case's inputs, and the seconds they took."""
    base = baseline(folder, folder.normal_for(row))
    t0 = time.process_time()  # CPU seconds: what one case costs one core, whatever else runs
    series = inputs.series
    detector = ServiceMetricsDetector(config.metrics)
    mr = detector.assess(base.metrics, series, *metric_window(series, inputs.alert)) if series else None
    causes = rank_services(case_signals(inputs, mr), inputs.alert, config.rca)
    return causes, time.process_time() - t0


def case_signals(inputs: CaseInputs, metrics: ServiceMetricsReport | None) -> ServiceSignals:
    """What the ranking is given for a case: the daemon's correlate stage builds the same
    record from its detect stage (monitor/cycle/correlate.py) and calls the same function."""
    return ServiceSignals(metrics=metrics, log_findings=inputs.log_findings, trace_findings=inputs.trace_findings,
                          graph=inputs.graph, given_graph=inputs.given, observed=inputs.observed,
                          candidates=inputs.candidates,
                          lacking=what_lacked(inputs.counts, inputs.normal_counts, seconds=inputs.lengths))


def run_case(folder: nf.NezhaFolder, row: pd.Series, config: Config = CONFIG) -> tuple[list[Cause], float]:
    """Ranked services for one case and the seconds it took (conversion + detectors + ranking)."""
    inputs = case_inputs(folder, row)
    causes, secs = rank_case(folder, row, inputs, config)
    return causes, inputs.seconds + secs


def _ac(ranks: list[int | None], k: int) -> float:
    return float(np.mean([r is not None and r <= k for r in ranks])) if ranks else float("nan")


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """AC@k per group, and `no evidence`: cases whose culprit had no finding at all in the
    modalities given. Those rank in a tie among evidence-less services wherever the
    ranking is, so they bound AC@1 from above: a data limit, not a ranking one."""
    rows = []
    for name, g in [("overall", df), *sorted(df.groupby("fault_category"))]:
        r = g["rank"].tolist()
        acs = [_ac(r, k) for k in range(1, 6)]
        rows.append({"group": name, "cases": len(g), "AC@1": acs[0], "AC@3": acs[2], "AC@5": acs[4],
                     "Avg@5": float(np.mean(acs)), "no evidence": int((~g["evidence"]).sum())})
    return pd.DataFrame(rows).set_index("group")


def truth_evidence(causes: list[Cause], truth: str) -> bool:
    """Whether the culprit's cause rests on any finding (a positive score)."""
    return any(c.entity == truth and c.score > 0 for c in causes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder in the Nezha benchmark format")
    ap.add_argument("--cases", default="", help="comma-separated case ids (default: all)")
    ap.add_argument("--show", type=int, default=0, help="print the top N causes of each case")
    ap.add_argument("--no-history", action="store_true",
                    help="ignore the case's pre-alert logs/traces (window from 90 s before the alert)")
    ap.add_argument("--guard", type=float, default=HISTORY_GUARD_S,
                    help="seconds before the alert where the window starts and recent history ends")
    add_without(ap)
    args = ap.parse_args(argv)
    HISTORY["on"], HISTORY["guard"] = not args.no_history, args.guard
    t_load = time.perf_counter()
    folder = (nf.NezhaFolder(Path(args.data)).without(args.without).short_normal(args.normal_seconds)
              .normal_without(args.normal_without))
    t_load = time.perf_counter() - t_load
    print(f"ablation: {ablation_header(Path(args.data).name, folder)}", flush=True)
    t_fit = time.perf_counter()
    for nid in folder.periods["case_id"]:
        baseline(folder, str(nid))
    t_fit = time.perf_counter() - t_fit
    labels = folder.labels
    if args.cases:
        labels = labels[labels["case_id"].isin(args.cases.split(","))]
    results = []
    for _, row in labels.iterrows():
        causes, secs = run_case(folder, row)
        ranked = [c.entity for c in causes]
        truth = row["root_cause_service"]
        rank = ranked.index(truth) + 1 if truth in ranked else None
        results.append({"case_id": row["case_id"], "fault_type": row["fault_type"],
                        "fault_category": row["fault_category"], "truth": truth, "rank": rank,
                        "top1": ranked[0] if ranked else None, "seconds": secs,
                        "evidence": truth_evidence(causes, truth)})
        print(f"{row['case_id']:<12} {row['fault_type']:<15} truth={truth:<30} rank={rank!s:<4} "
              f"top1={ranked[0] if ranked else '-':<30} {secs * 1000:6.0f} ms", flush=True)
        for c in causes[: args.show]:
            print(f"    {c.score:.3f} {c.entity}: {c.explanation[:300]}")
    df = pd.DataFrame(results)
    print()
    print(summary(df).to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"\nCPU time per case: median {df['seconds'].median() * 1000:.0f} ms, "
          f"p95 {np.percentile(df['seconds'], 95) * 1000:.0f} ms (one process, one core; "
          f"loading the parquet files once: {t_load:.1f} s; fitting the baselines of "
          f"{len(folder.periods)} normal periods once: {t_fit:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
