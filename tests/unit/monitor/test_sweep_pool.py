"""How many sweep worker processes a replica starts, and how the fleet is cut into chunks
(monitor/sweep_pool.py); the processes themselves: tests/integration/test_sweep_processes.py."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from monitor import sweep_pool
from monitor.cores import usable_cores
from monitor.sweep_pool import SweepPool, process_count, split
from monitor.vigil import Vigil


def cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> Path:
    tmp_path.mkdir()
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2)
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0])
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1])
    return tmp_path


@pytest.fixture
def sixty_four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_pool.os, "sched_getaffinity", lambda _: set(range(64)), raising=False)


def test_a_containers_cpu_quota_caps_the_cores_not_the_nodes_cpu_count(tmp_path: Path, sixty_four_cpus: None) -> None:
    assert usable_cores(cgroup(tmp_path / "a", v2="200000 100000\n")) == 2
    assert usable_cores(cgroup(tmp_path / "b", v2="150000 100000\n")) == 2  # 1.5 CPUs: two processes share it
    assert usable_cores(cgroup(tmp_path / "c", v1=("100000", "100000"))) == 1
    assert usable_cores(cgroup(tmp_path / "d", v2="max 100000\n")) == 64
    assert usable_cores(cgroup(tmp_path / "e", v1=("-1", "100000"))) == 64
    assert usable_cores(tmp_path / "none") == 64


def test_auto_starts_one_process_per_usable_core_for_a_large_fleet_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = "sqlite:////var/lib/vigil/vigil.db"
    monkeypatch.setattr(sweep_pool, "usable_cores", lambda: 2)
    assert process_count("auto", 1000, url) == 2
    assert process_count("auto", 199, url) == 0  # seconds on threads: no pool to start
    monkeypatch.setattr(sweep_pool, "usable_cores", lambda: 1)
    assert process_count("auto", 1000, url) == 0  # one core: processes only add copying
    monkeypatch.setattr(sweep_pool, "usable_cores", lambda: 64)
    assert process_count("auto", 1000, url) == sweep_pool.AUTO_MAX_PROCESSES
    assert process_count(3, 10, url) == 3  # asked for: given


def test_an_in_memory_store_is_never_swept_in_processes() -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"):
        assert process_count(4, 1000, url) == 0, url


def test_the_fleet_is_cut_into_about_four_chunks_per_process_in_order() -> None:
    models = [f"m{i}" for i in range(1000)]
    chunks = split(models, 2)
    assert [m for c in chunks for m in c] == models  # every model once, in order
    assert len(chunks) == 10 and max(map(len, chunks)) == 100  # capped: a chunk's batched read stays small
    assert [len(c) for c in split(models[:30], 2)] == [10, 10, 10]  # floored: a read per 10 models at least


def test_models_are_dealt_evenly_and_a_pattern_of_the_configuration_does_not_land_on_one_worker() -> None:
    names = [f"model-{i:04d}" for i in range(1000)]
    large = {n for i, n in enumerate(names) if i % 50 == 49}  # every 50th a large one: all odd positions
    pool = SweepPool(Vigil, SimpleNamespace(models=[SimpleNamespace(name=n) for n in names]))  # type: ignore[arg-type]
    dealt = pool.assign(names, 2)
    assert sorted(m for w in dealt for m in w) == names  # each model on exactly one worker
    assert [len(w) for w in dealt] == [500, 500]
    assert all(6 <= len(large & set(w)) <= 14 for w in dealt), [len(large & set(w)) for w in dealt]
    assert pool.assign(list(reversed(names)), 2) == [list(reversed(w)) for w in dealt]  # a model keeps its worker
    assert pool.assign(["not-configured"], 2) == pool.assign(["not-configured"], 2)
