"""An alias read as absent (a pipeline that deletes then sets it; MLflow answering
RESOURCE_DOES_NOT_EXIST during a failover) turned the rollback's check off: the intent
recorded `from` as unknown, and every later move was unconditional, so a pipeline's v3
landing meanwhile was rolled back to v1 and reported "moved from vNone to v1". An absent
read is now what it is: Vigil's own rollback (and a button's) expects the blamed version
and refuses; a layer expected absent is moved only while it still reads absent."""
from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rollback import Move, decide_move
from monitor.cycle.rollback_ask import RollbackAsk
from monitor.executors.base import ExecutorError, RollbackStep
from monitor.executors.build import alias_executor
from monitor.store.intents import AUTOMATIC
from tests.helpers_vigil import MODEL, T0, MemoryRegistry, make_config, make_vigil, serving_registry


class AbsentForAWhile(MemoryRegistry):
    """The alias reads absent `gap_reads` times, then the pipeline's v3 lands."""

    gap_reads = 0

    def alias_version(self, name: str, alias: str) -> str | None:
        version = super().alias_version(name, alias)
        if self.gap_reads > 0:
            self.gap_reads -= 1
            if self.gap_reads == 0:
                self.aliases[(MODEL, "champion")] = "3"
            return None
        return version


def test_an_alias_read_as_absent_refuses_vigils_rollback_and_moves_nothing(tmp_path: Path) -> None:
    base = serving_registry(version="2", versions=("1", "2", "3"))
    reg = AbsentForAWhile(aliases=dict(base.aliases), versions=dict(base.versions))
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    reg.gap_reads = 2  # the ask's reads (the alias, then every layer); the pipeline's set lands after
    out = vigil.rollbacks.request(RollbackAsk(vigil.config.model(MODEL), "1", "automatic: incident 1", AUTOMATIC,
                                              None, T0, max_attempts=10, only_from="2"))
    assert reg.aliases[(MODEL, "champion")] == "3" and reg.moves == [], "the pipeline's v3 was rolled back"
    assert str(out.status) == "refused", out
    assert "could not be read as v2" in out.detail and "nothing moved" in out.detail


def test_a_layer_recorded_absent_is_not_moved_once_it_serves_a_version() -> None:
    assert decide_move("3", None, "1") == Move.SUPERSEDED
    assert decide_move(None, None, "1") == Move.ACT  # still absent: a person sets it
    reg = serving_registry(version="3", versions=("1", "2", "3"))
    step = RollbackStep(MODEL, MODEL, None, "1", "k")
    with pytest.raises(ExecutorError) as e:
        alias_executor(reg, "champion").apply(step)
    assert e.value.reason == "changed" and "not absent" in e.value.detail
    assert reg.aliases[(MODEL, "champion")] == "3" and reg.moves == []


def test_a_persons_rollback_still_sets_an_alias_that_is_truly_absent(tmp_path: Path) -> None:
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    del reg.aliases[(MODEL, "champion")]
    out = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "restore", "api:alice", None, T0))
    assert str(out.status) == "done", out
    assert reg.aliases[(MODEL, "champion")] == "1"


def test_an_alias_absent_for_cycles_is_refused_once_then_rolled_back_when_it_reads_again(tmp_path: Path) -> None:
    """The refusal was recorded and audited again every cycle the alias read absent (one
    action and two audit rows a cycle); it is recorded once, and the rollback stays armed."""
    from tests.helpers_vigil import incident_prometheus
    base = serving_registry(version="1", versions=("1", "2"))
    reg = AbsentForAWhile(aliases=dict(base.aliases), versions=dict(base.versions))
    vigil = make_vigil(make_config(tmp_path), registry=reg,
                       prometheus=incident_prometheus(bad_from=T0 - 300, bad_until=T0 + 3600))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300):
        vigil.run_cycle(MODEL, t)
    absent = True
    read = MemoryRegistry.alias_version

    def alias_version(self: MemoryRegistry, name: str, alias: str) -> str | None:
        return None if absent else read(self, name, alias)
    reg.alias_version = alias_version.__get__(reg)  # type: ignore[method-assign]
    for t in (T0, T0 + 300, T0 + 600):
        vigil.run_cycle(MODEL, t)
    refused = [a for a in vigil.store.actions(model=MODEL) if str(a.status) == "refused"]
    audits = [e.action for e in vigil.store.audit_entries() if e.action.startswith("rollback")]
    assert len(refused) == 1 and "reads as absent" in refused[0].detail, refused
    assert len(audits) == 2, audits
    absent = False
    vigil.run_cycle(MODEL, T0 + 900)
    assert reg.aliases[(MODEL, "champion")] == "1", "the rollback was disarmed by the absent reads"
