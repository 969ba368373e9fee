"""A real crash between the Argo undo and its full promotion: the daemon's process is
killed (SIGKILL) right after it changed the Rollout's template, before anything verified
or recorded it. v2 had been fully promoted, so Argo runs the undo through the canary steps
and stops at `pause: {}`. The next process must finish the rollback: promote it fully
once, with no second undo (the layer already runs v1: it is only read back)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.fakes.argo_controller import reconcile
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import ARGO, replica_set, rollout
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config, serving_registry

ROOT = Path(__file__).resolve().parents[2]

# The incident's cycles up to the automatic rollback, with the fail point armed.
CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry
    tmp, models = Path(sys.argv[1]), json.loads(sys.argv[2])
    reg = serving_registry()
    cfg = make_config(tmp, models=models, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300, T0):
        vigil.run_cycle(MODEL, t)
    print("survived", flush=True)
""")


def test_a_kill_between_the_undo_and_the_promote_is_finished_by_the_next_process(tmp_path: Path) -> None:
    with FakeKubeApi() as kube:
        kube.put_object(rollout(version="2"))
        kube.put_object(replica_set("1", 1, "aaa111"))
        kube.put_object(replica_set("2", 2, "bbb222"))
        assert reconcile(kube)["stableRS"] == "bbb222"  # v2 fully promoted
        models = [model_config(serving={"kind": "argo_rollouts", "namespace": "ml", "name": "recommender",
                                        "version_label": "model-version", "api_url": kube.url})]
        env = {**os.environ, "VIGIL_FAILPOINTS": "after_serving_change=kill", "PYTHONPATH": str(ROOT)}
        child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), json.dumps(models)], env=env,
                               cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr[-3000:]
        undone = kube.get_object(*ARGO, "recommender")
        assert undone["spec"]["template"]["metadata"]["labels"]["model-version"] == "1"  # before the kill
        assert reconcile(kube)["phase"] == "Paused"  # Argo walks the steps of the undo and stops

        reg = serving_registry()
        reg.aliases[(MODEL, "champion")] = "1"  # the alias moved before the kill, too
        cfg = make_config(tmp_path, models=models, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
        vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
        vigil.reconcile(T0 + 10)  # what `vigil run` does at start-up
        vigil.run_cycle(MODEL, T0 + 60)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "pending" and "promote the rollback fully" in action.detail, action.detail
        assert reconcile(kube)["stableRS"] == "aaa111"
        vigil.run_cycle(MODEL, T0 + 120)
        [action] = vigil.store.actions(model=MODEL)
        assert (action.status, action.from_version, action.to_version) == ("done", "2", "1"), action.detail
        writes = [(w.path.rsplit("/", 1)[-1], w.body) for w in kube.writes()]
        undos = [b for _, b in writes if isinstance(b, list)]
        promotes = [b for _, b in writes if isinstance(b, dict) and "promoteFull" in b.get("status", {})]
        assert len(undos) == 1 and len(promotes) == 1, writes
