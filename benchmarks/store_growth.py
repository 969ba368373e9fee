"""Store bytes per model-day, with and without retention (and drift reports compressed).

    python -m benchmarks.store_growth                  # 2 models x 30 days, default retention
    python -m benchmarks.store_growth --days 60 --samples-per-day 20000

Two SQLite stores receive the same simulated traffic, day by day: ingested feature
samples (`--samples-per-day` rows of `--features` floats per model), one drift incident a
model every `--incident-every` days with its Evidently report (rendered once by Evidently
on synthetic data, the real HTML), the notifications that incident sends (delivered),
its audit entries. One store keeps everything as Vigil 0.1.0 did (reports as HTML text,
nothing ever deleted); the other stores reports compressed and runs the purge job
(monitor/store/retention.py) at the end of each simulated day with the retention given
(default: the config's defaults, samples shortened to `--samples-days`). The live bytes
of each store (pages in use, not the file's high-water mark) are printed per day and per
model-day at the end, and the size of one report as text and gzip-compressed.
"""
from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import insert, text

from alerts.lifecycle import IncidentStatus
from alerts.outbox import OutboxStatus
from monitor.config_retention import DAY, RetentionConfig
from monitor.store.repository import DriftReportRow, IncidentRow, OutboxRow, SampleRow, Store
from monitor.store.retention import purge

T0 = 1_800_000_000.0


@dataclass(frozen=True)
class Traffic:
    models: int
    days: int
    samples_per_day: int
    features: int
    incident_every: int
    messages_per_incident: int = 4


def evidently_report(features: int, seed: int = 0) -> str:
    """A real Evidently drift report (what the cycle stores) over synthetic data."""
    import pandas as pd

    from detectors.drift import render_drift_report

    rng = np.random.default_rng(seed)
    cols = [f"f{i}" for i in range(features)]
    ref = pd.DataFrame(rng.normal(0, 1, (2000, features)), columns=cols)
    cur = pd.DataFrame(rng.normal(0.3, 1.2, (2000, features)), columns=cols)
    return render_drift_report(ref, cur, cols, max_rows=2000, seed=seed)


def live_bytes(store: Store) -> int:
    """Pages in use: what the data takes, whatever the file grew to before a purge freed pages."""
    with store.engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar() or 0
        free = conn.execute(text("PRAGMA freelist_count")).scalar() or 0
        size = conn.execute(text("PRAGMA page_size")).scalar() or 0
    return int((pages - free) * size)


def one_day(store: Store, traffic: Traffic, day: int, report: str, rng: np.random.Generator, *,
            compress: bool = True) -> None:
    start = T0 + day * DAY
    for m in range(traffic.models):
        model = f"model-{m}"
        ts = start + np.sort(rng.uniform(0, DAY, traffic.samples_per_day))
        values = rng.normal(0, 1, (traffic.samples_per_day, traffic.features)).round(4)
        names = [f"f{i}" for i in range(traffic.features)]
        rows = [{"model": model, "ts": float(t), "record": dict(zip(names, map(float, row), strict=True))}
                for t, row in zip(ts, values, strict=True)]
        with store.tx() as s:  # the rows Store.add_samples writes, inserted in bulk: this measures bytes
            s.execute(insert(SampleRow), rows)
        if day % traffic.incident_every == m % traffic.incident_every:
            _incident(store, model, start, report, traffic.messages_per_incident, compress)


def _incident(store: Store, model: str, start: float, report: str, messages: int, compress: bool) -> None:
    with store.tx() as s:
        row = IncidentRow(model=model, status=IncidentStatus.RESOLVED, severity="warning",
                          title=f"{model}: feature drift", onset=start, opened_at=start, updated_at=start + 3600,
                          resolved_at=start + 3600, cold_start=False, reasons=["drift"], findings=[], causes=[],
                          fingerprint="f" * 16)
        s.add(row)
        s.flush()
        for i in range(messages):
            s.add(OutboxRow(notifier="slack", kind="incident", key=f"incident:{row.id}", payload={"i": i},
                            status=OutboxStatus.DELIVERED, attempts=1, created_at=start, next_attempt_at=start,
                            delivered_at=start + 60 * i))
        incident_id = row.id
        if not compress:  # as Vigil 0.1.0 stored it: the HTML as text
            s.add(DriftReportRow(incident_id=incident_id, html=report, html_gz=None, created_at=start))
    if compress:
        store.save_drift_report(incident_id, report, start)
    store.audit("vigil", "incident.open", f"incident:{incident_id}", {"model": model}, now=start)


def run(traffic: Traffic, retention: RetentionConfig, report: str, workdir: Path, *, quiet: bool = False
        ) -> tuple[list[int], list[int]]:
    kept_all = Store(f"sqlite:///{workdir / 'keep-all.db'}")
    retained = Store(f"sqlite:///{workdir / 'retention.db'}")
    sizes_all, sizes_ret = [], []
    for day in range(traffic.days):
        one_day(kept_all, traffic, day, report, np.random.default_rng(day), compress=False)
        one_day(retained, traffic, day, report, np.random.default_rng(day))
        purge(retained, retention, T0 + (day + 1) * DAY)
        sizes_all.append(live_bytes(kept_all))
        sizes_ret.append(live_bytes(retained))
        if not quiet:
            print(f"  day {day + 1:3d}: 0.1.0, keep everything {sizes_all[-1] / 1e6:8.1f} MB   "
                  f"with retention {sizes_ret[-1] / 1e6:8.1f} MB", flush=True)
    kept_all.close()
    retained.close()
    return sizes_all, sizes_ret


def _summary(label: str, sizes: list[int], model_days: int) -> str:
    last_day = (sizes[-1] - sizes[-2]) / 1e6 if len(sizes) > 1 else sizes[-1] / 1e6
    return (f"{label} {sizes[-1] / 1e6:.1f} MB = {sizes[-1] / model_days / 1e6:.2f} MB per model-day "
            f"(the last day added {last_day:+.1f} MB)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=2, help="models writing to the store (default: 2)")
    p.add_argument("--days", type=int, default=30, help="simulated days (default: 30)")
    p.add_argument("--samples-per-day", type=int, default=10_000, help="ingested rows per model and day")
    p.add_argument("--features", type=int, default=20, help="features per sample and in the report (default: 20)")
    p.add_argument("--incident-every", type=int, default=3, help="a drift incident per model every N days")
    p.add_argument("--samples-days", type=float, default=7, help="retention.samples in days (default: 7)")
    p.add_argument("--reports-days", type=float, default=14, help="retention.drift_reports in days (default: 14)")
    p.add_argument("--synthetic-report-kb", type=int, default=0,
                   help="use a repetitive synthetic HTML of this size instead of rendering one with Evidently")
    p.add_argument("--quiet", action="store_true", help="only the summary")
    args = p.parse_args(argv)
    traffic = Traffic(args.models, args.days, args.samples_per_day, args.features, args.incident_every)
    retention = RetentionConfig(samples=args.samples_days * DAY, drift_reports=args.reports_days * DAY,
                                resolved_incidents=365 * DAY, delivered_outbox=7 * DAY)
    t0 = time.perf_counter()
    report = ("<tr><td>feature</td><td>0.31</td></tr>" * (args.synthetic_report_kb * 28) if args.synthetic_report_kb
              else evidently_report(args.features))
    raw, packed = len(report.encode()), len(gzip.compress(report.encode(), 6))
    print(f"drift report: {raw / 1e6:.2f} MB as HTML, {packed / 1e6:.2f} MB gzip-compressed "
          f"({raw / packed:.1f}x smaller)")
    with tempfile.TemporaryDirectory() as d:
        sizes_all, sizes_ret = run(traffic, retention, report, Path(d), quiet=args.quiet)
    model_days = traffic.models * traffic.days
    print(f"{traffic.models} model(s) x {traffic.days} day(s), {traffic.samples_per_day} samples/model/day x "
          f"{traffic.features} features, an incident per model every {traffic.incident_every} day(s); "
          f"retention samples {args.samples_days:g} d, drift reports {args.reports_days:g} d, outbox 7 d")
    print(_summary("0.1.0, keep everything:", sizes_all, model_days))
    print(_summary("with retention:        ", sizes_ret, model_days))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
