"""`auto_promote` under a dry-run policy: the promotion it would make was recorded, audited
and announced (a Grafana annotation) again every cycle once the challenger had passed
enough cycles, where a dry-run pull is said once. Now once per challenger and champion;
with dry_run off, the promotion then happens."""
from __future__ import annotations

from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_canary_cycle import prometheus


def _vigil(tmp_path, registry, dry_run: bool):
    cfg = make_config(tmp_path, policy={"rollback": {"dry_run": dry_run}}, models=[model_config(
        canary={"alias": "challenger", "promote_after_cycles": 2, "auto_promote": True})])
    return make_vigil(cfg, prometheus=prometheus(), registry=registry)


def test_a_dry_run_promotion_is_recorded_once_and_made_once_dry_run_is_off(tmp_path):
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    dry = _vigil(tmp_path, registry, dry_run=True)
    for k in range(5):
        dry.run_cycle(MODEL, T0 + 60 * k)
    assert [(a.kind, a.status) for a in dry.store.actions(model=MODEL)] == [("canary_promote", "dry_run")]
    assert [e.action for e in dry.store.audit_entries()] == ["canary.promote.requested", "canary.promote.dry_run"]
    assert registry.aliases[(MODEL, "champion")] == "1"
    dry.close()

    live = _vigil(tmp_path, registry, dry_run=False)
    live.run_cycle(MODEL, T0 + 300)
    assert registry.aliases[(MODEL, "champion")] == "2"
