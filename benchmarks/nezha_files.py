"""File adapters for the Nezha-format folder: parquet rows -> the records the HTTP clients produce.

LokiSource gives LogRecord (ts in seconds, service, line, pod, level, trace_id, labels),
TempoSource gives Span (hex ids, ns times), the Prometheus client gives Series with
`service` and `pod` labels. These functions produce exactly those types from the
documented parquet columns, so the benchmark exercises the same detectors and
correlator as the daemon.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from detectors.records import LogRecord, Series, Span
from monitor.config_root_cause import read_graph_file

# Node-level metrics describe the machine a pod runs on, not the service: they would
# implicate every pod on a busy node, so service-level RCA leaves them out.
NODE_METRIC_PREFIX = "Node"
# Client-side latency of a pod is the latency of the calls it makes: it measures its
# callees (the metric form of inclusive time), so a root-cause ranking leaves it out,
# as it uses self time rather than inclusive time in traces.
CLIENT_LATENCY_PREFIX = "PodClientLatency"
MODALITIES = ("metrics", "logs", "traces")
# What an ablation may remove: the candidates and the metric detector need metrics, and a
# system with none of them is out of scope (no service list to rank).
REMOVABLE = ("logs", "traces")


def _none(v: object) -> str | None:
    """A text column's value, None where the parquet holds null or NaN."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v if isinstance(v, str) else str(v)


def log_records(df: pd.DataFrame) -> list[LogRecord]:
    ts = df["timestamp_ns"].to_numpy(np.int64) / 1e9
    span = df["span_id"].where(df["span_id"].notna(), None).tolist()
    return [
        LogRecord(ts=float(t), service=s, line=m, pod=p, level=_none(lv), trace_id=_none(tr),
                  labels={"span_id": sp} if sp else {})
        for t, s, m, p, lv, tr, sp in zip(ts, df["service"].tolist(), df["message"].tolist(),
                                          df["pod"].tolist(), df["level"].tolist(), df["trace_id"].tolist(), span,
                                          strict=True)
    ]


def spans(df: pd.DataFrame) -> list[Span]:
    parent = df["parent_id"].where(df["parent_id"].notna(), None).tolist()
    error = df["error"].astype(bool).tolist() if "error" in df else [False] * len(df)
    return [
        Span(trace_id=t, span_id=s, parent_id=p, service=sv, operation=op, start_ns=int(a), end_ns=int(b),
             error=e, pod=pod)
        for t, s, p, sv, op, a, b, e, pod in zip(
            df["trace_id"].tolist(), df["span_id"].tolist(), parent, df["service"].tolist(),
            df["operation"].tolist(), df["start_ns"].tolist(), df["end_ns"].tolist(), error, df["pod"].tolist(),
            strict=True)
    ]


def series(df: pd.DataFrame) -> list[Series]:
    df = df[~df["metric"].str.startswith((NODE_METRIC_PREFIX, CLIENT_LATENCY_PREFIX))]
    df = df.sort_values(["pod", "metric", "timestamp"], kind="stable")
    ts, vals = df["timestamp"].to_numpy(float), df["value"].to_numpy(float)
    keys = df[["pod", "service", "metric"]].to_numpy()
    change = np.flatnonzero((keys[1:] != keys[:-1]).any(axis=1)) + 1 if len(df) else np.array([], int)
    bounds = np.concatenate([[0], change, [len(df)]]) if len(df) else np.array([0])
    return [Series(name=str(keys[a][2]), labels={"service": str(keys[a][1]), "pod": str(keys[a][0])},
                   timestamps=ts[a:b], values=vals[a:b]) for a, b in pairwise(bounds)]


class NezhaFolder:
    """All tables of one folder, loaded once and sliced per case (loading is not timed)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for name in ("labels.csv", "metrics.parquet", "logs.parquet", "traces.parquet", "normal"):
            if not (self.root / name).exists():
                raise FileNotFoundError(f"{self.root / name} is missing: expected a Nezha-format folder "
                                        "(labels.csv, metrics/logs/traces parquet, normal/)")
        self.labels = pd.read_csv(self.root / "labels.csv")
        tables = {n: pd.read_parquet(self.root / f"{n}.parquet") for n in MODALITIES}
        normal = {n: pd.read_parquet(self.root / "normal" / f"{n}.parquet") for n in MODALITIES}
        # A modality with no rows at all (a system without logs or traces) still has its
        # columns: an empty frame of the right shape stands for every case.
        self.empty = {n: tables[n].iloc[:0] for n in MODALITIES}
        self.tables = {n: self._by_case(df) for n, df in tables.items()}
        self.normal = {n: self._by_case(df) for n, df in normal.items()}
        self.periods = pd.read_csv(self.root / "normal" / "periods.csv")
        # A given service map per scenario (graphs/<scenario>.csv: row calls column), if any,
        # read as the daemon reads `root_cause.call_graph: <file>`.
        self.graphs = {p.stem: read_graph_file(str(p)) for p in sorted((self.root / "graphs").glob("*.csv"))}
        # Modalities taken away by `without`: part of the folder's identity, so fitted
        # baselines of the full folder are never reused for an ablated one.
        self.removed: frozenset[str] = frozenset()
        self.had_none: frozenset[str] = frozenset()  # of `removed`: those it had no rows of anyway
        self.normal_seconds: float | None = None  # set by `short_normal`
        self.normal_removed: frozenset[str] = frozenset()  # set by `normal_without`

    def without(self, modalities: Iterable[str]) -> NezhaFolder:
        """The same folder as if its system had none of `modalities`, in the cases AND the
        normal periods: every case then gets the typed empty frame a folder without that
        modality gives (as PetShop's), so the detectors and the ranking take the same
        path as on a system that never had it. The tables are shared, not copied."""
        gone = frozenset(modalities)
        if unknown := gone - set(REMOVABLE):
            raise ValueError(f"cannot remove {sorted(unknown)}: only {', '.join(REMOVABLE)} can be removed")
        out = copy.copy(self)
        out.had_none = self.had_none | (gone & set(self.absent()))
        out.tables = {n: {} if n in gone else t for n, t in self.tables.items()}
        out.normal = {n: {} if n in gone else t for n, t in self.normal.items()}
        out.removed = self.removed | gone
        return out

    def normal_without(self, modalities: Iterable[str]) -> NezhaFolder:
        """The same folder with normal periods that hold none of `modalities` (a normal
        period Tempo kept no traces of) while the cases keep theirs."""
        gone = frozenset(modalities)
        if unknown := gone - set(REMOVABLE):
            raise ValueError(f"cannot remove {sorted(unknown)}: only {', '.join(REMOVABLE)} can be removed")
        out = copy.copy(self)
        out.normal = {n: {} if n in gone else t for n, t in self.normal.items()}
        out.normal_removed = self.normal_removed | gone
        return out

    def short_normal(self, seconds: float | None) -> NezhaFolder:
        """The same folder with each normal period's logs and traces cut to their first
        `seconds`: a reference that saw few calls of each pair (a pod few requests reach,
        a quiet hour). Metrics are kept: they have their own short-period rule. None: as is."""
        if seconds is None:
            return self
        if not seconds > 0:
            raise ValueError(f"normal seconds: expected a number of seconds > 0, got {seconds!r}")
        def head(df: pd.DataFrame, col: str) -> pd.DataFrame:
            return df[df[col] < df[col].min() + seconds * 1e9].reset_index(drop=True)

        out = copy.copy(self)
        out.normal = dict(self.normal)
        for modality, col in (("logs", "timestamp_ns"), ("traces", "start_ns")):
            out.normal[modality] = {k: head(g, col) for k, g in self.normal[modality].items()}
        out.normal_seconds = float(seconds)
        return out

    def absent(self) -> list[str]:
        """Modalities without a single row in the cases or the normal periods."""
        return [n for n in MODALITIES if not any(len(df) for df in (*self.tables[n].values(),
                                                                    *self.normal[n].values()))]

    @staticmethod
    def _by_case(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
        return {k: g.reset_index(drop=True) for k, g in df.groupby("case_id", sort=False)}

    def case(self, modality: str, case_id: str) -> pd.DataFrame:
        """The case's rows of one modality; an empty frame with the columns when it has none."""
        return self.tables[modality].get(case_id, self.empty[modality])

    def normal_for(self, label_row: pd.Series) -> str:
        """The normal period of the case's day (same `date`), else of the same system."""
        p = self.periods
        same = p[(p["system"] == label_row["system"]) & (p["date"] == label_row["date"])]
        if same.empty:
            same = p[p["system"] == label_row["system"]]
        if same.empty:
            raise ValueError(f"no normal period for system {label_row['system']!r} in normal/periods.csv")
        return str(same.iloc[0]["case_id"])

    def graph_for(self, label_row: pd.Series) -> list[tuple[str, str]] | None:
        """The (caller, callee) edges of the case's scenario's map; the only one when the folder has one."""
        scenario = str(label_row.get("scenario", ""))
        if scenario in self.graphs:
            return self.graphs[scenario]
        return next(iter(self.graphs.values())) if len(self.graphs) == 1 else None

    def normal_table(self, modality: str, normal_id: str) -> pd.DataFrame:
        return self.normal[modality].get(normal_id, self.empty[modality])
