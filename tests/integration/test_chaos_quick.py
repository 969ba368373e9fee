"""`python -m benchmarks.chaos --quick` end to end (about 3 minutes, real servers): the
harness itself works. Deselect with `-m "not chaos"`.

The four counts are asserted to be 0 in a test of their own.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.replay.local_postgres import find_bindir

REPO = Path(__file__).resolve().parents[2]
FINAL = re.compile(r"^lost_alerts=(\d+) duplicate_posts=(\d+) duplicate_rollbacks=(\d+) wrong_rollbacks=(\d+) "
                   r"takeover_s=(\d+\.\d)$")
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    missing = [b for b in ("prometheus", "promtool") if shutil.which(b) is None]
    if find_bindir() is None:
        missing.append("postgresql")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI: {missing} not installed; `make test` installs them")
        pytest.skip(f"not installed: {missing}")
    workdir = tmp_path_factory.mktemp("chaos")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.chaos", "--quick", "--workdir", str(workdir)],
                          cwd=REPO, capture_output=True, text=True, timeout=540)
    return proc.returncode, proc.stdout + "\n" + proc.stderr[-5000:]


@pytest.mark.timeout(600)
def test_quick_mode_injects_faults_and_ends_with_the_final_line(quick_run: tuple[int, str]) -> None:
    code, out = quick_run
    assert code in (0, 1), f"the benchmark crashed (exit {code}):\n{out[-5000:]}"
    final = [m for m in map(FINAL.match, out.splitlines()) if m]
    assert len(final) == 1, out[-5000:]
    ran = re.search(r"^(\d+) of (\d+) faults ran, (\d+) took effect", out, re.M)
    assert ran is not None, out[-5000:]
    assert int(ran.group(2)) == 6 and int(ran.group(1)) >= 5 and int(ran.group(3)) >= 3, ran.group(0)
    for kind in ("kill9", "failpoint:after_alias_move", "registry_outage"):
        assert re.search(rf"^\d+\s+{re.escape(kind)}\s", out, re.M), f"no {kind} row:\n{out[-5000:]}"
    assert 0 <= float(final[0].group(5)) < 120  # takeover_s, a number of seconds


@pytest.mark.timeout(600)
def test_quick_mode_counts_are_zero(quick_run: tuple[int, str]) -> None:
    code, out = quick_run
    final = [m for m in map(FINAL.match, out.splitlines()) if m]
    assert final, out[-5000:]
    counts = [int(final[0].group(i)) for i in range(1, 5)]
    assert counts == [0, 0, 0, 0], out[-6000:]
    assert code == 0
