"""The performance stage reads the label and sample files twice a cycle: the horizon's windows
and, once a window, the reference refit (every label since the reference began). Both read
under one name, so each read dropped from the cache the files the other needed: every refit
parsed the reference period's files again (and the horizon read dropped them again)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from monitor.sources.samples import SampleFiles
from tests.helpers_vigil import T0, make_vigil
from tests.unit.monitor.test_performance_cycle import REF_END, _config, _world

H = 3600.0


def _daily_files(tmp_path: Path) -> None:
    frame = _world(tmp_path)
    (tmp_path / "samples" / "predictions.csv").unlink()
    (tmp_path / "labels").mkdir()
    labels = frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"])
    for name, rows in (("reference", frame["timestamp"] <= REF_END), ("recent", frame["timestamp"] > REF_END)):
        frame[rows].drop(columns="_truth").to_csv(tmp_path / "samples" / f"{name}.csv", index=False)
        labels[rows][["prediction_id", "label", "timestamp"]].to_csv(tmp_path / "labels" / f"{name}.csv",
                                                                     index=False)


def test_each_file_is_parsed_once_over_cycles_and_refits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _daily_files(tmp_path)
    parses: Counter[str] = Counter()
    real = SampleFiles._parse_any

    def counted(self: SampleFiles, path: str, arrow: bool):  # type: ignore[no-untyped-def]
        parses[f"{Path(path).parent.name}/{Path(path).name}"] += 1
        return real(self, path, arrow)

    monkeypatch.setattr(SampleFiles, "_parse_any", counted)
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    for k, t in enumerate([T0 + 1200, T0 + 1800, T0 + 1200 + H, T0 + 1200 + 2 * H, T0 + 1800 + 2 * H]):
        out = vigil.run_cycle("churn", t)
        assert any(f.kind == "performance_drop" for f in out.findings) or k > 1, [f.message for f in out.findings]
    assert vigil.performance._inputs._references["churn"][0] == T0 + 1200 + 2 * H  # refitted three times
    assert dict(parses) == {"samples/reference.csv": 1, "samples/recent.csv": 1,
                            "labels/reference.csv": 1, "labels/recent.csv": 1}
