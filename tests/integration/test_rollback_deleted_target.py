"""A known-good version deleted from MLflow since it served (a clean-up job, a version
withdrawn) is no rollback target: moving the alias to it fails. The automatic rollback
goes to the next version known good instead of failing and leaving the bad deploy live;
with none left, the refusal says which were deleted."""
from __future__ import annotations

from tests.helpers_vigil import MODEL, T0
from tests.integration.test_rollback_safety import _actions, _run, _serve, _vigil


def test_the_rollback_skips_a_known_good_version_the_registry_deleted(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("0", "1", "2"))
    _serve(v, reg, "0", T0 - 20000, 31)  # v0 known good
    _serve(v, reg, "1", T0 - 12000, 31)  # v1 known good, more recently
    _serve(v, reg, "2", T0 - 1200, 0)  # v2 regresses at T0 - 300
    del reg.versions[(MODEL, "1")]  # v1 deleted in MLflow
    _run(v, T0 - 1200, T0 + 600)
    assert [a for a in _actions(v) if a[1] != "refused"] == [("rollback", "done", "2", "0", "vigil")], _actions(v)
    assert reg.aliases[(MODEL, "champion")] == "0"


def test_with_every_candidate_deleted_the_refusal_names_them(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"))
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 2)  # v2 takes the alias
    del reg.versions[(MODEL, "1")]
    choice = v.operator.choose_target(v.config.model(MODEL), T0)
    assert choice.version is None and "no longer in the registry: v1" in choice.reason, choice
