"""The cores this process may use, which is not `os.cpu_count()` in a container."""
from __future__ import annotations

import math
import os
from pathlib import Path


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: the CPUs it is allowed on, capped by a cgroup CPU
    quota (a container limited to 2 CPUs on a 64-core node sees 64 in os.cpu_count())."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota is not None else max(1, cores)


def _cgroup_quota(root: Path) -> float | None:
    """CPUs of the cgroup's quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None when unlimited."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None
