"""The bad deploy goes out while MLflow does not answer Vigil's poll (a blip of a few
minutes). The incident opens on the symptoms; MLflow answers again 3 minutes after onset
and the poll dates the alias move then, inside the onset's 5-minute slack. No poll after
the opening read the old version, so the move is not known to answer the incident: it is
its suspect, and rolled back."""
from __future__ import annotations

from tests.helpers_vigil import MODEL, T0
from tests.integration.test_rollback_safety import _actions, _run, _serve, _vigil


def test_a_deploy_seen_after_a_registry_blip_is_still_the_suspect(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"), bad_from=T0 - 300)
    _serve(v, reg, "1", T0 - 12000, 31)  # v1 known good
    _run(v, T0 - 1200, T0 - 420)
    reg.down = True  # MLflow stops answering
    reg.aliases[(MODEL, "champion")] = "2"  # the deploy pipeline moves the alias at T0 - 360
    _run(v, T0 - 360, T0 - 180)  # CTR and latency regress at T0 - 300: the incident opens, registry blind
    opened = [i for i in v.store.all_incidents() if i.status == "open"]
    assert opened, "precondition: the incident opened while MLflow was down"
    reg.down = False  # back at T0 - 120, 3 minutes after onset
    reports = _run(v, T0 - 120, T0 + 600)
    causes = reports[-1].incident.causes if reports[-1].incident else []
    assert any(c.deploy is not None and c.deploy.version == "2" for c in causes), \
        f"v2 not a suspect; deploys={v.store.deploys(MODEL)[-1:]}, opened_at={opened[0].opened_at}"
    assert ("rollback", "done", "2", "1", "vigil") in _actions(v), _actions(v)
