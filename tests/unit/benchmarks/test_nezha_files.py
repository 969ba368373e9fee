"""A Nezha-format folder whose system has no logs and no traces (PetShop-like): it loads,
every case runs, and the ranking says what it lacked."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import nezha_files as nf
from benchmarks import rca_nezha as rn

LOG_COLS = ["case_id", "timestamp_ns", "pod", "service", "container", "node", "trace_id", "span_id", "level",
            "message"]
SPAN_COLS = ["case_id", "trace_id", "span_id", "parent_id", "service", "pod", "operation", "start_ns", "end_ns",
             "duration_us"]
SERVICES = ("web", "orders", "db")


def _metrics(case_id: str, t0: int, n: int, broken: str | None = None, onset: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(len(case_id) + n)
    rows = []
    for svc in SERVICES:
        for i in range(n):
            t = t0 + 300 * i
            lat = 0.1 * rng.uniform(0.95, 1.05)
            avail = 100.0
            if broken and t >= onset - 300:
                if svc == broken:
                    avail = 70.0
                elif svc == "web":  # the caller sees its callee's failures
                    avail = 85.0
            rows += [(case_id, t, svc, svc, "latency_Average", lat), (case_id, t, svc, svc, "availability_Average",
                                                                      avail)]
    return pd.DataFrame(rows, columns=["case_id", "timestamp", "pod", "service", "metric", "value"])


def _folder(root: Path, normal_samples: int) -> Path:
    (root / "normal").mkdir(parents=True)
    (root / "graphs").mkdir()
    onset = 100_000
    labels = pd.DataFrame([{"case_id": "c1", "system": "shop", "date": "2024-01-01", "onset_ts": onset,
                            "root_cause_service": "orders", "fault_type": "error", "fault_category": "availability",
                            "scenario": "low"}])
    labels.to_csv(root / "labels.csv", index=False)
    _metrics("c1", onset - 600, 5, broken="orders", onset=onset).to_parquet(root / "metrics.parquet")
    _metrics("n1", 10_000, normal_samples).to_parquet(root / "normal" / "metrics.parquet")
    for base in (root, root / "normal"):
        pd.DataFrame(columns=LOG_COLS).to_parquet(base / "logs.parquet")
        pd.DataFrame(columns=SPAN_COLS).to_parquet(base / "traces.parquet")
    pd.DataFrame([{"case_id": "n1", "system": "shop", "date": "2024-01-01"}]).to_csv(
        root / "normal" / "periods.csv", index=False)
    adj = pd.DataFrame(0, index=list(SERVICES), columns=list(SERVICES))
    adj.loc["web", "orders"] = 1
    adj.loc["orders", "db"] = 1
    adj.to_csv(root / "graphs" / "low.csv")
    return root


def test_a_folder_without_logs_or_traces_loads_and_gives_empty_typed_frames(tmp_path: Path) -> None:
    folder = nf.NezhaFolder(_folder(tmp_path, 50))
    logs = folder.case("logs", "c1")
    assert logs.empty and list(logs.columns) == LOG_COLS
    assert folder.normal_table("traces", "n1").empty
    assert folder.graph_for(folder.labels.iloc[0]) is not None


def test_a_metrics_only_case_ranks_the_failing_callee_first_and_says_what_it_lacked(tmp_path: Path) -> None:
    folder = nf.NezhaFolder(_folder(tmp_path, 50))
    causes, _ = rn.run_case(folder, folder.labels.iloc[0])
    assert causes[0].entity == "orders"
    assert causes[1].entity == "web" and causes[1].evidence["explained_by"] == "orders"
    assert "no logs at all" in causes[0].evidence["lacking"]
    assert "no traces at all" in causes[0].evidence["lacking"]


def test_a_single_normal_sample_still_ranks(tmp_path: Path) -> None:
    folder = nf.NezhaFolder(_folder(tmp_path, 1))
    causes, _ = rn.run_case(folder, folder.labels.iloc[0])
    assert causes[0].entity == "orders"
    assert any("recent history" in x for x in causes[0].evidence["lacking"])
