"""Every shared root-cause set with ONE configuration: AC@1/3/5 and Avg@5 per set, the
z-score ranking on the same cases, and a leave-one-set-out figure.

    python -m benchmarks.rca_suite [--nezha ../shared/data/nezha] [--petshop ../shared/data/petshop]
                                   [--without logs] [--without traces]

In-sample: the configuration the daemon ships (`rca_nezha.CONFIG`, the detectors' and
ranking's defaults) on every set. It is the candidate whose worse set is best (largest
minimum Avg@5 over the sets): chosen for working on both systems, not for either's score.
Leave-one-set-out: for each set, the candidate configuration(s) (`CANDIDATES`, a small
grid of general settings, none tied to a case, service, file or fault type) that score
best (mean Avg@5, then AC@1) on the OTHER set(s) are scored on the left-out one; when
several tie there, the figure is their mean and the AC@1 range is printed. That is the
figure to expect on a system none of the settings were chosen on.

Z-score ranking (the floor to beat): each service's largest per-metric z-score, the
window's samples against the normal period's mean and standard deviation, with no
direction, no graph and no logs or traces.

Ablation (`--without logs`, `--without traces`, repeatable): every set is ranked as if
its system had none of that modality, cases and normal periods alike
(`NezhaFolder.without`), through the same detectors, ranking and configuration: the
proxy for "a system without logs", which no shared set is. The header line names what
each set was ranked without; on a set that never had the modality (PetShop) it is a
no-op and says so. Everything below the header, the left-out row included, is then
measured without it.

Later faults (`--later`): per set, the candidate(s) that score best on its earlier half
of cases (by onset time) are scored on its later half, next to the shipped configuration
on that later half: settings chosen on the past, judged on faults that came after.

Speed: median seconds per case for the whole case (conversion, log, trace and metric
detectors, ranking), one process, one core.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from benchmarks import nezha_files as nf
from benchmarks import rca_nezha as rn
from correlators.rca import RcaParams
from detectors.service_metrics import ServiceMetricsParams

DEFAULT_SETS = {"nezha": Path("../shared/data/nezha"), "petshop": Path("../shared/data/petshop")}


def _candidates() -> dict[str, rn.Config]:
    """A small grid over the general settings: how much z makes a finding, where the
    level comes from, how strong a callee must be to explain its caller, the spread's
    floor, and whether the bad side's tail widens the spread."""
    out: dict[str, rn.Config] = {}
    levels: tuple[Literal["normal", "recent", "both"], ...] = ("normal", "recent", "both")
    for min_z, level, share, floor, tail in product((3.0, 6.0), levels, (0.25, 1.0), (0.01, 0.001), (0.0, 0.9)):
        m = replace(ServiceMetricsParams(), min_z=min_z, z_scale=min_z, level=level, abs_floor_rel=floor, tail=tail)
        name = f"z{min_z:g}-{level}-share{share:g}-floor{floor:g}-tail{tail:g}"
        out[name] = rn.Config(m, replace(RcaParams(), explain_share=share))
    return out


CANDIDATES = _candidates()


@dataclass
class SetData:
    name: str
    folder: nf.NezhaFolder
    rows: list[pd.Series]
    inputs: list[rn.CaseInputs]


def load(name: str, root: Path, without: Sequence[str] = (), normal_seconds: float | None = None,
         normal_without: Sequence[str] = ()) -> SetData:
    folder = nf.NezhaFolder(root).without(without).short_normal(normal_seconds).normal_without(normal_without)
    for nid in folder.periods["case_id"]:
        rn.baseline(folder, str(nid))
    rows = [r for _, r in folder.labels.iterrows()]
    return SetData(name, folder, rows, [rn.case_inputs(folder, r) for r in rows])


def ranks(d: SetData, config: rn.Config) -> tuple[list[int | None], list[float]]:
    out, secs = [], []
    for row, inp in zip(d.rows, d.inputs, strict=True):
        causes, s = rn.rank_case(d.folder, row, inp, config)
        names = [c.entity for c in causes]
        truth = row["root_cause_service"]
        out.append(names.index(truth) + 1 if truth in names else None)
        secs.append(inp.seconds + s)
    return out, secs


def zscore_ranks(d: SetData) -> list[int | None]:
    """Each service's largest per-metric |z| (window vs the normal period's mean and sd)."""
    out: list[int | None] = []
    for row, inp in zip(d.rows, d.inputs, strict=True):
        normal = {(s.name, s.labels["service"], s.labels["pod"]): s.values
                  for s in nf.series(d.folder.normal_table("metrics", d.folder.normal_for(row)))}
        by_metric: dict[tuple[str, str], np.ndarray] = {}
        for (name, svc, _), v in normal.items():
            by_metric.setdefault((name, svc), v)
        lo, hi = rn.metric_window(inp.series, inp.alert)
        best: dict[str, float] = {c: 0.0 for c in inp.candidates}
        for s in inp.series:
            ref = by_metric.get((s.name, s.labels["service"]))
            w = s.values[(s.timestamps >= lo) & (s.timestamps <= hi)]
            if ref is None or len(ref) < 2 or not len(w):
                continue
            sd = float(np.nanstd(ref))
            if not sd > 0:
                continue
            z = float(np.nanmax(np.abs(w - np.nanmean(ref)))) / sd
            best[s.labels["service"]] = max(best.get(s.labels["service"], 0.0), z)
        order = sorted(best, key=lambda k: (-best[k], k))
        truth = row["root_cause_service"]
        out.append(order.index(truth) + 1 if truth in order else None)
    return out


def halves(d: SetData) -> tuple[list[int], list[int]]:
    """Indexes of a set's earlier and later half of cases, by onset time."""
    order = sorted(range(len(d.rows)), key=lambda i: float(d.rows[i]["onset_ts"]))
    cut = len(order) // 2
    return order[:cut], order[cut:]


def later_rows(d: SetData, per_case: dict[str, list[int | None]], shipped: list[int | None]) -> list[dict]:
    """The later half scored with the candidate(s) best on the earlier half (mean when
    tied), and with the shipped configuration."""
    early, late = halves(d)
    def on(idx: list[int], name: str) -> tuple[float, float]:
        f = figures([per_case[name][i] for i in idx])
        return round(f["Avg@5"], 9), round(f["AC@1"], 9)
    best = max(on(early, n) for n in per_case)
    tied = [n for n in per_case if on(early, n) == best]
    scored = [figures([per_case[n][i] for i in late]) for n in tied]
    mean = {k: float(np.mean([f[k] for f in scored])) for k in ("AC@1", "AC@3", "AC@5", "Avg@5")}
    ac1 = [f["AC@1"] for f in scored]
    return [{"set": d.name, "cases": len(late), "ranking": "later half, shipped configuration",
             **figures([shipped[i] for i in late])},
            {"set": d.name, "cases": len(late),
             "ranking": f"later half, chosen on the earlier: {len(tied)} tied, AC@1 {min(ac1):.3f}-{max(ac1):.3f}",
             **mean}]


def figures(r: list[int | None]) -> dict[str, float]:
    acs = [float(np.mean([x is not None and x <= k for x in r])) for k in range(1, 6)]
    return {"AC@1": acs[0], "AC@3": acs[2], "AC@5": acs[4], "Avg@5": float(np.mean(acs))}


def _on(score: dict[tuple[str, str], dict[str, float]], sets: list[str], name: str) -> tuple[float, float]:
    """A candidate's mean Avg@5 and AC@1 over `sets` (rounded: equal means equal)."""
    return (round(float(np.mean([score[(s, name)]["Avg@5"] for s in sets])), 9),
            round(float(np.mean([score[(s, name)]["AC@1"] for s in sets])), 9))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nezha", type=Path, default=DEFAULT_SETS["nezha"])
    ap.add_argument("--petshop", type=Path, default=DEFAULT_SETS["petshop"])
    ap.add_argument("--grid", action="store_true", help="also print every candidate on every set")
    ap.add_argument("--later", action="store_true",
                    help="also choose on each set's earlier half of cases and score its later half")
    rn.add_without(ap)
    args = ap.parse_args(argv)
    roots = (("nezha", args.nezha), ("petshop", args.petshop))
    sets = [load(n, p, args.without, args.normal_seconds, args.normal_without) for n, p in roots]
    print("ablation: " + "; ".join(rn.ablation_header(d.name, d.folder) for d in sets))
    rows = []
    score: dict[tuple[str, str], dict[str, float]] = {}
    later: list[dict] = []
    for d in sets:
        r, secs = ranks(d, rn.CONFIG)
        rows.append({"set": d.name, "cases": len(r), "ranking": "vigil (one config)", **figures(r),
                     "median_s": float(np.median(secs))})
        rows.append({"set": d.name, "cases": len(r), "ranking": "z-score", **figures(zscore_ranks(d))})
        per_case = {name: ranks(d, cfg)[0] for name, cfg in CANDIDATES.items()}
        for name, rk in per_case.items():
            score[(d.name, name)] = figures(rk)
        if args.later:
            later += later_rows(d, per_case, r)
    for d in sets:
        others = [o.name for o in sets if o is not d]

        best = max(_on(score, others, n) for n in CANDIDATES)
        # Candidates the other set(s) cannot tell apart are all "the choice": the figure
        # is their mean, with the spread of AC@1 among them.
        tied = [n for n in CANDIDATES if _on(score, others, n) == best]
        mean = {k: float(np.mean([score[(d.name, n)][k] for n in tied])) for k in ("AC@1", "AC@3", "AC@5", "Avg@5")}
        ac1 = [score[(d.name, n)]["AC@1"] for n in tied]
        rows.append({"set": d.name, "cases": len(d.rows),
                     "ranking": f"left out: {len(tied)} tied choice(s), AC@1 {min(ac1):.3f}-{max(ac1):.3f}", **mean})
    df = pd.DataFrame(rows + later).set_index(["set", "ranking"])
    print(df.to_string(float_format=lambda x: f"{x:.3f}", na_rep=""))
    if args.grid:
        print()
        grid = pd.DataFrame([{"config": n, "set": s, **v} for (s, n), v in score.items()])
        print(grid.pivot_table(index="config", columns="set", values=["AC@1", "Avg@5"]).to_string(
            float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
