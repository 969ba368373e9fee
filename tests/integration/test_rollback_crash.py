"""Issue 11, row 1, with a real crash: the daemon's process is killed (SIGKILL) right after
the MLflow alias moved and before anything recorded it. The next process on the same
store and the same real (SQLite) MLflow registry must finish the rollback: one move, a
`done` action and audit entry, no external "registry" deploy, and the guard counting it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from monitor.config import MlflowConfig
from monitor.replay.local_mlflow import sqlite_tracking_uri
from monitor.sources.registry import RegistrySource
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

ROOT = Path(__file__).resolve().parents[2]

# Runs the incident's cycles up to the automatic rollback, with the fail point armed.
CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from monitor.config import MlflowConfig
    from monitor.sources.registry import RegistrySource
    from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil
    tmp, uri = Path(sys.argv[1]), sys.argv[2]
    reg = RegistrySource(MlflowConfig(tracking_uri=uri, timeout_s=30))
    vigil = make_vigil(make_config(tmp), registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.set_alias(MODEL, "champion", "2")
    for t in (T0 - 900, T0 - 600, T0 - 300, T0):
        vigil.run_cycle(MODEL, t)
    print("survived", flush=True)
""")


def test_a_kill_after_the_alias_move_is_finished_by_the_next_process(tmp_path: Path) -> None:
    uri = sqlite_tracking_uri(tmp_path / "mlflow.db")
    with RegistrySource(MlflowConfig(tracking_uri=uri, timeout_s=30)) as reg:
        reg.create_model(MODEL)
        for _ in ("1", "2"):
            reg.create_version(MODEL, f"vigil-test:/{MODEL}")
        reg.set_alias(MODEL, "champion", "1")
    env = {**os.environ, "VIGIL_FAILPOINTS": "after_alias_move=kill", "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), uri], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=240)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr[-3000:]
    assert "survived" not in child.stdout

    with RegistrySource(MlflowConfig(tracking_uri=uri, timeout_s=30)) as reg:
        assert reg.alias_version(MODEL, "champion") == "1"  # the move happened before the kill
        vigil = make_vigil(make_config(tmp_path), registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
        vigil.reconcile(T0 + 10)  # what `vigil run` does at start-up
        vigil.run_cycle(MODEL, T0 + 60)
        [action] = vigil.store.actions(model=MODEL)
        assert (action.status, action.from_version, action.to_version) == ("done", "2", "1")
        sources = [d.source for d in vigil.store.deploys(MODEL) if d.at >= T0 - 300]
        assert sources == ["rollback"], sources  # not mistaken for somebody's deploy
        audit = [e.action for e in vigil.store.audit_entries()]
        assert audit.count("rollback.done") == 1
        assert len(vigil.store.rollback_times(MODEL)) == 1
        # A later default manual rollback does not move the alias to the bad v2.
        choice = vigil.operator.choose_target(vigil.config.model(MODEL), T0 + 120)
        assert choice.version in (None, "1")
        assert reg.alias_version(MODEL, "champion") == "1"
