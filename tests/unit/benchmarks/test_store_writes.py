"""The scale benchmark's tally of store writes (benchmarks/store_writes.py): statements and
bytes per table, blobs counted at their length, reads not counted, and transactions."""
from __future__ import annotations

from pathlib import Path

from benchmarks.store_writes import StoreWrites
from monitor.store.repository import Store


def test_writes_are_counted_per_table_with_blob_sizes_and_reads_are_not(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    tally = StoreWrites()
    tally.attach(store.engine)
    store.save_profile("m", "1", "/ref", bytes(range(256)) * 400, 0.0)
    store.profile("m", "1", "/ref")
    with store.tx() as s:
        store.save_detector_state(s, "m", {"@logs": {"fitted_on": [1.0, 2.0]}})
    tally.detach(store.engine)
    assert tally.statements["reference_profiles"] == 1
    assert 1_000 < tally.bytes["reference_profiles"] < 102_400 / 2  # the gzip, at its size (a memoryview)
    assert tally.statements["detector_states"] == 1 and tally.statements["model_state"] == 1
    assert tally.transactions == 2 and tally.begun == 3  # the read opened one too
    assert "reference_profiles=" in tally.summary() and "write_tx=2.0" in tally.summary()
    store.close()
