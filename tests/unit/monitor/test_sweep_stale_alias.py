"""A sweep reads every alias once, before its cycles. A rollback that finishes after that
read (its pending intent driven to the end by the model's own cycle, or by another
replica) has moved the alias and stored the move: the sweep's read is then stale, and
must not be taken for a deploy back to the version that was just rolled back."""
from __future__ import annotations

from detectors.records import DeployEvent
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


class SweepRegistry:
    """serving_registry() plus the sweep's one-pass read."""

    def __init__(self) -> None:
        self.base = serving_registry(version="2")
        self.alias_reads = 0

    def all_aliases(self, names: list[str]) -> dict[str, dict[str, str]]:
        return {n: {a: v for (m, a), v in self.base.aliases.items() if m == n} for n in names}

    def alias_version(self, name: str, alias: str) -> str | None:
        self.alias_reads += 1
        return self.base.alias_version(name, alias)

    def __getattr__(self, attr: str):  # versions, tags, moves: the memory registry's own
        return getattr(self.base, attr)


def test_a_rollback_done_after_the_sweeps_alias_read_is_not_a_deploy_back(tmp_path):
    reg = SweepRegistry()
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(), registry=reg)
    vigil.run_sweep(T0, workers=1)  # v2 serves: first sight, stored
    t = T0 + 60
    pre = vigil.prefetch([MODEL], t)
    assert pre.aliases == {MODEL: {"champion": "2"}}
    # ... then the rollback v2 -> v1 finishes and records itself, as rollback_intents does
    reg.base.aliases[(MODEL, "champion")] = "1"
    with vigil.store.tx() as s:
        vigil.store.add_deploy(s, DeployEvent(MODEL, "champion", "1", "2", t, "rollback"))
        state = vigil.store.model_state(s, MODEL)
        state.alias_version, state.alias_seen_at = "1", t
    report = vigil.run_cycle(MODEL, t, prefetched=pre)
    assert report.deploys == []
    with vigil.store.tx() as s:
        assert vigil.store.model_state(s, MODEL).alias_version == "1"
    moves = [(d.previous_version, d.version) for d in vigil.store.deploys(MODEL, since=T0 - 1, until=t + 1)]
    assert moves == [("2", "1")], moves


def test_a_model_the_sweeps_read_missed_is_read_again_not_taken_for_gone(tmp_path, caplog):
    """The sweep's read pages through the registry by offset: a model deleted meanwhile
    shifts the next one onto a page already read, and the sweep's answer lacks it."""
    reg = SweepRegistry()
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus(), registry=reg)
    vigil.run_sweep(T0, workers=1)  # v2 serves: stored
    pre = vigil.prefetch([MODEL], T0 + 60)
    pre.aliases = {MODEL: {}}  # as the shifted page left it
    report = vigil.run_cycle(MODEL, T0 + 60, prefetched=pre)
    assert report.deploys == [] and reg.alias_reads == 1
    assert "deploys are not tracked" not in caplog.text
