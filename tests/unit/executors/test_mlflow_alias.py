"""mlflow_alias against the in-memory registry: moves, is idempotent, reads back, fails clearly."""
from __future__ import annotations

import pytest

from monitor.executors.base import ExecutorError, RollbackStep
from monitor.executors.build import alias_executor
from tests.helpers_vigil import serving_registry

STEP = RollbackStep(model="recommender", registry_name="recommender", from_version="2", to_version="1",
                    key="rollback:1")


def test_moves_the_alias_and_verifies() -> None:
    reg = serving_registry("recommender", "2")
    ex = alias_executor(reg, "champion")
    assert ex.current(STEP) == "2"
    ex.apply(STEP)
    assert reg.aliases[("recommender", "champion")] == "1"
    v = ex.verify(STEP)
    assert (v.ok, v.serving) == (True, "1")
    assert "champion" in v.detail


def test_apply_twice_moves_once() -> None:
    reg = serving_registry("recommender", "2")
    ex = alias_executor(reg, "champion")
    ex.apply(STEP)
    ex.apply(STEP)
    assert reg.moves == [("recommender", "champion", "1")]


def test_registry_down_is_retryable_and_names_the_alias() -> None:
    reg = serving_registry("recommender", "2")
    reg.down = True
    with pytest.raises(ExecutorError) as e:
        alias_executor(reg, "champion").apply(STEP)
    assert e.value.retryable and e.value.reason == "unavailable"
    assert "alias 'champion' of registered model 'recommender'" in e.value.detail


def test_unknown_version_is_not_retryable() -> None:
    reg = serving_registry("recommender", "2")
    step = RollbackStep("recommender", "recommender", "2", "7", "rollback:2")
    with pytest.raises(ExecutorError) as e:
        alias_executor(reg, "champion").apply(step)
    assert not e.value.retryable and e.value.reason == "not_found"
    assert "version 7" in e.value.detail
    assert reg.aliases[("recommender", "champion")] == "2"


def test_verify_reports_a_later_move_by_someone_else() -> None:
    reg = serving_registry("recommender", "2", versions=("1", "2", "3"))
    ex = alias_executor(reg, "champion")
    ex.apply(STEP)
    reg.aliases[("recommender", "champion")] = "3"
    v = ex.verify(STEP)
    assert (v.ok, v.serving) == (False, "3")
    assert "expected v1" in v.detail


def test_an_alias_moved_by_someone_else_is_left_alone() -> None:
    reg = serving_registry("recommender", "3", versions=("1", "2", "3"))
    with pytest.raises(ExecutorError) as e:
        alias_executor(reg, "champion").apply(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "changed")
    assert "now points at v3" in e.value.detail
    assert reg.moves == []
