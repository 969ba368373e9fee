"""The RCA benchmarks' ablation (`--without logs|traces`): a case is ranked as if the
system had no such records, in the case and in the normal period, by the same detectors
and ranking. On a tiny folder whose failing service also writes errors to its log (or
answers slower in its spans): with the modality the ranking uses it; without, no cause
carries its evidence and every cause says it was lacking."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks import nezha_files as nf
from benchmarks import rca_nezha as rn
from benchmarks import rca_suite as rs
from correlators.incident import Cause
from detectors.records import FindingKind, Span
from tests.synthetic_traces import synthetic_traces
from tests.unit.benchmarks.test_nezha_files import LOG_COLS, SERVICES, SPAN_COLS, _folder

ONSET = 100_000  # the onset `_folder` gives its one case


def _lines(case_id: str, t0: float, seconds: int, failing: str | None, seed: int) -> list[dict[str, Any]]:
    """A line a second per service; with `failing`, that service logs errors from the onset."""
    rng = random.Random(seed)
    rows = []
    for i in range(seconds):
        for svc in SERVICES:
            rows.append({"t": t0 + i, "svc": svc, "level": "INFO",
                         "msg": f"INFO handled request {rng.randint(1, 9999)} in {rng.randint(5, 40)} ms"})
        if failing and t0 + i >= ONSET and i % 5 == 0:
            rows.append({"t": t0 + i + 0.5, "svc": failing, "level": "ERROR",
                         "msg": f"ERROR order {rng.randint(1, 9999)} failed: java.sql.SQLException: pool exhausted"})
    return [{"case_id": case_id, "timestamp_ns": int(r["t"] * 1e9), "pod": f"{r['svc']}-1", "service": r["svc"],
             "container": r["svc"], "node": "n", "trace_id": None, "span_id": None, "level": r["level"],
             "message": r["msg"]} for r in rows]


def _folder_with_logs(root: Path) -> nf.NezhaFolder:
    _folder(root, 50)
    pd.DataFrame(_lines("c1", ONSET - 180, 300, "orders", 1), columns=LOG_COLS).to_parquet(root / "logs.parquet")
    pd.DataFrame(_lines("n1", 10_000, 300, None, 2), columns=LOG_COLS).to_parquet(
        root / "normal" / "logs.parquet")
    return nf.NezhaFolder(root)


def _span_rows(case_id: str, spans: list[Span]) -> pd.DataFrame:
    """The synthetic call tree on the folder's services (api -> web, preprocess -> orders)."""
    names = {"api": "web", "preprocess": "orders"}
    rows = [{"case_id": case_id, "trace_id": s.trace_id, "span_id": s.span_id, "parent_id": s.parent_id,
             "service": names[s.service], "pod": f"{names[s.service]}-1", "operation": s.operation,
             "start_ns": s.start_ns, "end_ns": s.end_ns, "duration_us": (s.end_ns - s.start_ns) // 1000}
            for s in spans]
    return pd.DataFrame(rows, columns=SPAN_COLS)


def _folder_with_traces(root: Path) -> nf.NezhaFolder:
    """orders (called by web) answers 300 ms slower from the onset."""
    _folder(root, 50)
    _span_rows("c1", synthetic_traces(150, ONSET - 150, seed=1)
               + synthetic_traces(120, ONSET, pre_ms=300, seed=2)).to_parquet(root / "traces.parquet")
    _span_rows("n1", synthetic_traces(300, 10_000, seed=3)).to_parquet(root / "normal" / "traces.parquet")
    return nf.NezhaFolder(root)


def _evidence_of(c: Cause, modality: str, kind: FindingKind) -> bool:
    return (c.evidence["modalities"].get(modality, 0) > 0
            or any(f["kind"] == kind for f in c.evidence["findings"]))


def _log_evidence(c: Cause) -> bool:
    return _evidence_of(c, "logs", FindingKind.LOG_ANOMALY)


def test_with_logs_the_failing_service_carries_log_evidence(tmp_path: Path) -> None:
    folder = _folder_with_logs(tmp_path)
    causes, _ = rn.run_case(folder, folder.labels.iloc[0])
    assert causes[0].entity == "orders" and _log_evidence(causes[0])
    assert not any("logs" in x for x in causes[0].evidence["lacking"])


def test_without_logs_no_cause_uses_them_and_every_cause_says_they_lacked(tmp_path: Path) -> None:
    folder = _folder_with_logs(tmp_path).without(["logs"])
    row = folder.labels.iloc[0]
    assert folder.case("logs", "c1").empty and folder.normal_table("logs", "n1").empty
    causes, _ = rn.run_case(folder, row)
    assert causes[0].entity == "orders"  # the metrics still point at it
    assert not any(_log_evidence(c) for c in causes)
    assert all("no logs at all" in c.evidence["lacking"] and "logs" in c.evidence["missing"] for c in causes)


def test_an_ablated_folder_gets_its_own_baselines(tmp_path: Path) -> None:
    """The fitted baselines are cached per folder: the ablated one shares the root, and
    must not be scored against log templates fitted on logs it does not have."""
    full = _folder_with_logs(tmp_path)
    rn.run_case(full, full.labels.iloc[0])  # caches the full folder's fit first
    ablated = full.without(["logs"])
    assert rn.baseline(ablated, "n1") is not rn.baseline(full, "n1")
    assert rn.baseline(ablated, "n1").logs.frame.empty and not rn.baseline(full, "n1").logs.frame.empty


def test_removing_what_a_set_never_had_is_a_noop_and_the_header_says_so(tmp_path: Path) -> None:
    root = _folder(tmp_path, 50)  # metrics only, as PetShop
    plain, ablated = rs.load("tiny", root), rs.load("tiny", root, ["logs", "traces"])
    assert rs.ranks(plain, rn.CONFIG)[0] == rs.ranks(ablated, rn.CONFIG)[0] == [1]
    assert rn.ablation_header("tiny", plain.folder) == "tiny: nothing removed"
    assert rn.ablation_header("tiny", ablated.folder) == (
        "tiny: without logs, traces (the data have no logs, traces: a no-op there)")


def test_with_logs_the_header_names_the_removal_without_noop(tmp_path: Path) -> None:
    folder = _folder_with_logs(tmp_path).without(["logs"])
    assert rn.ablation_header("tiny", folder) == "tiny: without logs"


def test_metrics_cannot_be_removed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics"):
        nf.NezhaFolder(_folder(tmp_path, 50)).without(["metrics"])


def test_without_traces_no_cause_uses_them_and_every_cause_says_they_lacked(tmp_path: Path) -> None:
    full = _folder_with_traces(tmp_path)
    causes, _ = rn.run_case(full, full.labels.iloc[0])
    assert any(_evidence_of(c, "traces", FindingKind.TRACE_ANOMALY) for c in causes)
    causes, _ = rn.run_case(full.without(["traces"]), full.labels.iloc[0])
    assert causes[0].entity == "orders"
    assert not any(_evidence_of(c, "traces", FindingKind.TRACE_ANOMALY) for c in causes)
    assert all("no traces at all" in c.evidence["lacking"] for c in causes)


def test_a_short_normal_period_keeps_only_its_first_seconds_and_gets_its_own_baselines(tmp_path: Path) -> None:
    """`--normal-seconds N`: each normal period's logs and traces cut to their first N
    seconds (metrics kept), fitted apart from the full folder, and said in the header."""
    full = _folder_with_traces(tmp_path)
    short = full.short_normal(20)
    spans = short.normal_table("traces", "n1")
    span_s = (spans["start_ns"] - spans["start_ns"].min()) / 1e9
    assert len(spans) and span_s.max() < 20 and len(spans) < len(full.normal_table("traces", "n1"))
    assert len(short.normal_table("metrics", "n1")) == len(full.normal_table("metrics", "n1"))
    assert short.case("traces", "c1").equals(full.case("traces", "c1"))
    rn.baseline(full, "n1")
    assert len(rn.baseline(short, "n1").traces.frame) < len(rn.baseline(full, "n1").traces.frame)
    assert rn.ablation_header("tiny", short).endswith("normal logs/traces cut to their first 20 s")
    assert full.short_normal(None) is full
    with pytest.raises(ValueError, match="normal seconds"):
        full.short_normal(0)


def test_normal_periods_without_traces_keep_the_cases_traces_and_say_so(tmp_path: Path) -> None:
    """`--normal-without traces`: a normal period Tempo kept nothing of, while the cases
    keep their spans; ranked against their own baseline, never the full folder's."""
    full = _folder_with_traces(tmp_path)
    rn.run_case(full, full.labels.iloc[0])  # the full folder's baselines fitted first
    folder = full.normal_without(["traces"])
    assert folder.normal_table("traces", "n1").empty and not folder.case("traces", "c1").empty
    assert rn.ablation_header("tiny", folder) == "tiny: nothing removed; normal periods without traces"
    causes, _ = rn.run_case(folder, folder.labels.iloc[0])
    assert all("no traces in the normal period" in c.evidence["lacking"] for c in causes)


def test_a_culprit_without_any_finding_is_counted_as_a_data_limit(tmp_path: Path) -> None:
    """The summary separates what the modalities could not show from what the ranking
    got wrong: a culprit with no finding ties with every quiet service wherever it ranks."""
    folder = _folder_with_logs(tmp_path)
    causes, _ = rn.run_case(folder, folder.labels.iloc[0])
    quiet = [c.entity for c in causes if c.score == 0]
    assert rn.truth_evidence(causes, "orders") and quiet and not rn.truth_evidence(causes, quiet[0])
    df = pd.DataFrame([{"rank": 1, "fault_category": "availability", "evidence": True},
                       {"rank": 7, "fault_category": "availability", "evidence": False},
                       {"rank": 2, "fault_category": "latency", "evidence": True}])
    table = rn.summary(df)
    assert table.loc["overall", "no evidence"] == 1 and table.loc["latency", "no evidence"] == 0
    assert table.loc["overall", "AC@1"] == pytest.approx(1 / 3)
