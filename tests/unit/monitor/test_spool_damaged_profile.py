"""A spooled reference profile cut short (the host lost power between the write and its
pages reaching the disk: the entry's rename landed, half its bytes did not) is profiled
again from the reference, like a damaged sample entry; it failed every cycle of the model,
the entry's key unchanged, until someone emptied the spool by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers_vigil import MODEL, T0, vigil_on_files, write_reference


def test_a_truncated_spooled_profile_is_profiled_again(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    write_reference(tmp_path, rng)
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(400), "user_age": rng.normal(40, 10, 400),
                  "score": rng.uniform(0, 1, 400)}).to_parquet(tmp_path / "samples" / "a.parquet")
    vigil_on_files(tmp_path).run_cycle(MODEL, T0)  # profiles train.parquet into the spool
    entries = list((tmp_path / "spool" / "profiles").glob("*.bin"))
    assert entries
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    report = vigil_on_files(tmp_path).run_cycle(MODEL, T0 + 60)  # a restart: nothing in memory
    assert not report.blind, report.blind
    assert all(e.stat().st_size > 0 for e in entries)  # written again whole
    from detectors.drift import ReferenceProfile

    for e in entries:
        ReferenceProfile.from_bytes(e.read_bytes())
