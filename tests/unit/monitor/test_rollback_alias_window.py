"""MLflow has no compare-and-set on an alias. The alias executor read the alias, wrote the
move's 3 version tags (each up to timeout_s, with retries) and then set the alias: a person's
move inside that window (a fix forward to v3 in the MLflow UI) was overwritten, and the
rollback reported "done ... verified". A replica paused there past its lease wrote as well,
its lease last checked before the layer's turn. The alias is now read again right before the
write, after the lease is checked again, and once more right after it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from monitor.cycle.rollback_intents import RollbackAsk
from monitor.replicas import LeaseLost
from tests.helpers_vigil import (
    MODEL,
    T0,
    MemoryRegistry,
    incident_prometheus,
    make_config,
    make_vigil,
    serving_registry,
)

BAD_FROM = T0 - 300


class MovesDuringTagging(MemoryRegistry):
    """A registry where something happens between Vigil's tags and its alias write."""

    meanwhile: Any = None

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        super().set_version_tag(name, version, key, value)
        if self.meanwhile is not None and key.endswith(".set_by"):
            self.meanwhile, then = None, self.meanwhile
            then()


class MovesRightAfter(MemoryRegistry):
    """A person's move lands right after Vigil's alias write."""

    def set_alias(self, name: str, alias: str, version: str) -> None:
        super().set_alias(name, alias, version)
        self.aliases[(name, alias)] = "3"


def registry(cls: type[MemoryRegistry]) -> MemoryRegistry:
    base = serving_registry(versions=("1", "2", "3"))
    return cls(aliases=dict(base.aliases), versions=dict(base.versions))


def test_a_fix_forward_made_while_vigil_tags_its_move_is_left_alone_and_the_rollback_fails(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
    reg = registry(MovesDuringTagging)
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=BAD_FROM))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300):
        vigil.run_cycle(MODEL, t)
    assert isinstance(reg, MovesDuringTagging)
    reg.meanwhile = lambda: reg.aliases.__setitem__((MODEL, "champion"), "3")  # on-call ships v3 in the UI
    vigil.run_cycle(MODEL, T0)
    [action] = vigil.store.actions(model=MODEL)
    assert reg.aliases[(MODEL, "champion")] == "3", "Vigil overwrote the person's fix forward"
    assert reg.moves == []
    assert str(action.status) == "failed" and "now points at v3" in action.detail and "someone" in action.detail
    assert [e.action for e in vigil.store.audit_entries()][-2:] == ["rollback.requested", "rollback.failed"]


def test_a_move_read_right_after_the_write_fails_the_rollback_instead_of_done(tmp_path: Path) -> None:
    reg = registry(MovesRightAfter)
    reg.aliases[(MODEL, "champion")] = "2"
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    outcome = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "bad", "api:alice", None, T0))
    assert str(outcome.status) == "failed", outcome
    assert "was set to v1 and read right after at v3" in outcome.detail


class LostOnCue:
    """A fence whose lease is lost once `lost` is set (the replica paused past it, taken over)."""

    lost = False

    def check(self, session: Session, model: str, token: int) -> None:
        if self.lost:
            raise LeaseLost(model, token, "replica-b", current_token=token + 1)


def test_a_replica_paused_past_its_lease_while_tagging_does_not_write_the_alias(tmp_path: Path) -> None:
    reg = registry(MovesDuringTagging)
    reg.aliases[(MODEL, "champion")] = "2"
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    fence = LostOnCue()
    assert isinstance(reg, MovesDuringTagging)
    reg.meanwhile = lambda: setattr(fence, "lost", True)  # a GC stall or a stopped VM, here
    with pytest.raises(LeaseLost), vigil.store.fenced(fence, MODEL, 7):
        vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "bad", "vigil", None, T0))
    assert reg.aliases[(MODEL, "champion")] == "2" and reg.moves == []


def test_a_rollback_cancelled_while_vigil_tags_its_move_does_not_move_the_alias(tmp_path: Path) -> None:
    """On-call was told "cancelled ..., nothing moved" while the drive was between its read of
    the intent and the alias write; the alias then moved anyway and the rollback said done."""
    from monitor.cycle.rollback_cancel import cancel

    reg = registry(MovesDuringTagging)
    reg.aliases[(MODEL, "champion")] = "2"
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    m = vigil.config.model(MODEL)
    said = []
    assert isinstance(reg, MovesDuringTagging)
    reg.meanwhile = lambda: said.append(cancel(vigil.rollbacks, m, "api:alice", "by hand", T0 + 1))
    outcome = vigil.operator.rollback(RollbackAsk(m, "1", "bad", "api:bob", None, T0))
    assert [c.status for c in said] == ["cancelled"]
    assert reg.aliases[(MODEL, "champion")] == "2" and reg.moves == [], "the cancelled rollback moved the alias"
    assert str(outcome.status) == "failed" and "cancelled by api:alice" in outcome.detail, outcome
    [action] = vigil.store.actions(model=MODEL)
    assert (str(action.status), action.detail) == ("failed", said[0].detail)
    rollback = [e.action for e in vigil.store.audit_entries() if e.action.startswith("rollback")]
    assert rollback == ["rollback.requested", "rollback.cancel", "rollback.failed"]
