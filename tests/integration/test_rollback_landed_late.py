"""A rollback whose alias call timed out though MLflow made the move (the answer was lost,
not the write), or that another terminal's driver recorded failed while this one's move
was landing: the alias serves the rollback's target, and the record must say so. Recorded
"failed", the next poll read the move as somebody's deploy: the message said the rollback
failed, the version left was not blamed (a later automatic rollback could go back to it),
and the rollback's target became a deploy suspect."""
from __future__ import annotations

import contextlib
from typing import Any

from alerts.rollback import ActionStatus
from monitor.cycle.rollback_intents import RollbackAsk, RollbackRunner
from monitor.executors.base import ExecutorError, RollbackStep
from monitor.failpoints import ENV
from monitor.sources.errors import SourceUnavailable
from monitor.store.intents import add_intent, gave_up_moving, open_intents, rolled_back_from
from monitor.store.repository import Store
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import MODEL, T0, MemoryRegistry
from tests.integration.test_rollback_safety import _actions, _run, _serve, _vigil
from tests.unit.monitor.test_rollback_unexpected_error import Erratic, with_layer


class LostAnswerRegistry(MemoryRegistry):
    """MLflow moves the alias, then the answer is lost (a proxy timeout)."""

    lose_answers: int = 0

    def set_alias(self, name: str, alias: str, version: str) -> None:
        super().set_alias(name, alias, version)
        if self.lose_answers:
            self.lose_answers -= 1
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "read timed out")


def _serving_v2(tmp_path: Any, monkeypatch: Any) -> tuple[Any, Any]:
    """v1 known good (31 clean cycles), then v2 deployed and serving for 10 minutes; no incident."""
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"), bad_from=T0 + 86400)
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 10)
    return v, reg


def _recorded_not_moved(v: Any, monkeypatch: Any) -> int:
    """A person's rollback to v1 whose intent is recorded and nothing moved (a crash right after)."""
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with contextlib.suppress(Exception):
        v.operator.rollback(RollbackAsk(v.config.model(MODEL), "1", "bad release", "api:alice", None, T0 - 500))
    monkeypatch.delenv(ENV)
    with v.store.tx() as s:
        (intent_id,) = [i.id for i in open_intents(s, MODEL)]
    return intent_id


def test_a_rollback_whose_answer_was_lost_is_recorded_done_at_the_next_poll(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"), bad_from=T0 + 86400)
    reg.__class__ = LostAnswerRegistry  # the same registry, its answers now lost once asked
    _serve(v, reg, "1", T0 - 12000, 31)  # v1 known good
    _serve(v, reg, "2", T0 - 1200, 10)  # v2 deployed
    reg.lose_answers = 1
    m = v.config.model(MODEL)
    out = v.operator.rollback(RollbackAsk(m, "1", "bad release", "api:alice", None, T0 - 500))
    assert out.status == "failed", "precondition: the person's rollback gave up on the lost answer"
    assert reg.aliases[(MODEL, "champion")] == "1", "precondition: MLflow made the move"
    _run(v, T0 - 480, T0 - 300)
    assert _actions(v)[-1] == ("rollback", "done", "2", "1", "api:alice"), _actions(v)
    last = v.store.deploys(MODEL)[-1]
    assert (last.version, last.previous_version, last.source) == ("1", "2", "rollback"), last
    with v.store.tx() as s:
        assert [ver for _, ver in rolled_back_from(s, MODEL, 0.0)] == ["2"]  # never a target again
    audit = [e.action for e in v.store.audit_entries()]
    assert audit.count("rollback.failed") == 1 and audit.count("rollback.done") == 1, audit
    assert reg.moves == [(MODEL, "champion", "1")]  # nothing moved again


def test_a_move_by_hand_after_a_poll_saw_the_failed_rollback_stays_a_deploy(tmp_path, monkeypatch):
    """The rollback failed for real (nothing moved), a poll read the old version since, and a
    person later moves the alias to the same version: a deploy of theirs, not the old intent."""
    v, reg = _serving_v2(tmp_path, monkeypatch)
    reg.fail_set_alias = "connection refused"
    m = v.config.model(MODEL)
    assert v.operator.rollback(RollbackAsk(m, "1", "bad release", "api:alice", None, T0 - 500)).status == "failed"
    reg.fail_set_alias = None
    _run(v, T0 - 480, T0 - 420)  # the polls read v2 still
    reg.aliases[(MODEL, "champion")] = "1"
    _run(v, T0 - 360, T0 - 300)
    assert _actions(v)[-1][:2] == ("rollback", "failed"), _actions(v)
    assert v.store.deploys(MODEL)[-1].source == "registry"


def test_a_rollback_verified_by_one_driver_is_done_though_another_recorded_it_failed(tmp_path, monkeypatch):
    """Two terminals drive one intent: the second's read of the alias fails while the first's
    move is landing, and a person's attempt gives up at once; the first then verifies it."""
    v, reg = _serving_v2(tmp_path, monkeypatch)
    m = v.config.model(MODEL)
    intent_id = _recorded_not_moved(v, monkeypatch)
    runner: RollbackRunner = v.rollbacks
    set_alias = reg.set_alias

    def landing(name: str, alias: str, version: str) -> None:
        reg.down = True  # the other terminal's read fails meanwhile: it gives up
        assert runner.drive(intent_id, m, T0 - 499).status == "failed"
        reg.down = False
        set_alias(name, alias, version)

    monkeypatch.setattr(reg, "set_alias", landing)
    out = runner.drive(intent_id, m, T0 - 498)
    assert reg.aliases[(MODEL, "champion")] == "1"
    assert out.status == "done", out
    assert _actions(v)[-1] == ("rollback", "done", "2", "1", "api:alice"), _actions(v)
    last = v.store.deploys(MODEL)[-1]
    assert (last.version, last.source) == ("1", "rollback"), last
    _run(v, T0 - 480, T0 - 420)
    assert v.store.deploys(MODEL)[-1] == last  # the poll records no deploy of its own


def test_a_rollback_that_moved_the_alias_but_not_its_serving_layer_stays_failed(tmp_path):
    """The alias moved (verified, a step done), the serving layer never did: the poll that
    reads the alias's move records it as the rollback's own (no suspect, no second
    announcement), and the rollback stays failed: the model is not served at the target."""
    layer = Erratic(acts=False)
    vigil, reg = with_layer(tmp_path, layer)
    m = vigil.config.model(MODEL)
    vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: the alias moves, the layer raises
    for i in range(1, 12):
        vigil.operator.runner.reconcile(m, T0 + 60 * i)
    assert reg.aliases[(MODEL, "champion")] == "1" and layer.serving == "2", "precondition: half moved"
    vigil.run_cycle(MODEL, T0 + 780)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "failed" and "gave up after 10 attempts" in action.detail, action.detail
    # "failed" must not read as "nothing moved": the on-call is told which layers did
    assert "already moved to v1: mlflow_alias; still on v2: webhook" in action.detail, action.detail
    last = vigil.store.deploys(MODEL)[-1]
    assert (last.version, last.previous_version, last.source) == ("1", "2", "rollback"), last
    assert [e.action for e in vigil.store.audit_entries()].count("rollback.done") == 0


def test_a_failed_roll_forward_whose_alias_moved_is_recorded_a_promotion_not_a_rollback(tmp_path, monkeypatch):
    """A person's "rollback" to a version that never served (a fix forward through the
    rollback API) moves the alias; the serving layer fails. The poll that reads the alias
    there recorded it as a rollback, which is never a deploy suspect: the new version could
    not be blamed for what it broke. As when such a move is done, it is a promotion."""
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2", "3"), bad_from=T0 + 86400)
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 10)
    m = v.config.model(MODEL)
    v._layers[MODEL] = [v.layers(m)[0], Erratic(acts=False)]  # the alias, then a serving layer that fails
    v.operator.rollback(RollbackAsk(m, "3", "fix forward", "api:alice", None, T0 - 500))
    for i in range(1, 12):  # once the alias moved, it keeps trying to the end
        v.rollbacks.reconcile(m, T0 - 500 + i)
    assert not v.rollbacks.in_flight(MODEL) and reg.aliases[(MODEL, "champion")] == "3", "precondition: half moved"
    _run(v, T0 - 480, T0 - 420)
    assert _actions(v)[-1][:2] == ("rollback", "failed"), _actions(v)
    last = v.store.deploys(MODEL)[-1]
    assert (last.version, last.previous_version) == ("3", "2"), last
    assert last.source == "promotion", last  # a deploy like any other: it can be blamed


class Forbidden(Erratic):
    """A serving layer that refuses the move for good (a 403: it needs a person)."""

    def apply(self, step: RollbackStep) -> None:
        self.applies += 1
        raise ExecutorError(False, "webhook: 403 forbidden", reason="forbidden")


def test_an_automatic_rollback_that_moved_the_alias_and_failed_in_the_same_cycle_is_no_deploy(tmp_path):
    """The cycle's poll reads the alias unmoved, then its automatic rollback moves the alias and
    fails on the serving layer for good, all at the cycle's time: that read came before the
    move. The next poll recorded the rollback's alias move as somebody's deploy (a person's
    response); it is the rollback's own, as when the rollback fails in a later cycle."""
    layer = Forbidden(acts=False)
    vigil, reg = with_layer(tmp_path, layer)
    report = vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: the alias moves, the layer refuses
    assert report.rollback is not None and report.rollback["status"] == "failed", report.rollback
    assert reg.aliases[(MODEL, "champion")] == "1" and layer.serving == "2", "precondition: half moved"
    deploys = len(vigil.store.deploys(MODEL))
    vigil.run_cycle(MODEL, T0 + 60)
    [last] = vigil.store.deploys(MODEL)[deploys:]
    assert (last.version, last.previous_version, last.source) == ("1", "2", "rollback"), last


class Rollout(Erratic):
    """A serving layer whose move takes a while (a rollout): meanwhile `during` runs."""

    def __init__(self) -> None:
        super().__init__(acts=True)
        self.during: Any = None
        self.busy = False

    def current(self, step: RollbackStep) -> str | None:
        if self.busy:  # another terminal's read while the rollout runs: refused for good
            raise ExecutorError(False, "webhook: 403 forbidden", reason="forbidden")
        return self.serving

    def apply(self, step: RollbackStep) -> None:
        self.busy = True
        self.during()
        self.busy = False
        self.serving = step.to_version


def test_a_half_moved_rollback_the_poll_recorded_adds_no_second_deploy_when_verified(tmp_path, monkeypatch):
    """Two terminals drive one intent: while the first's serving layer rolls out, the second
    fails for good, and a poll reads the alias moved (the half move, recorded the rollback's).
    The first then verifies every layer: the rollback is done, and its alias move, recorded
    once already, is not recorded again (a second deploy event restarted the cold start)."""
    v, reg = _serving_v2(tmp_path, monkeypatch)
    m = v.config.model(MODEL)
    layer = Rollout()
    v._layers[MODEL] = [v.layers(m)[0], layer]
    intent_id = _recorded_not_moved(v, monkeypatch)

    def meanwhile() -> None:
        assert v.rollbacks.drive(intent_id, m, T0 - 497).status == "failed"
        v.run_cycle(MODEL, T0 - 480)

    layer.during = meanwhile
    assert v.rollbacks.drive(intent_id, m, T0 - 470).status == "done"
    assert _actions(v)[-1] == ("rollback", "done", "2", "1", "api:alice"), _actions(v)
    moves = [d for d in v.store.deploys(MODEL) if (d.version, d.previous_version) == ("1", "2")]
    assert [d.source for d in moves] == ["rollback"], moves


def test_a_rollback_that_moved_the_alias_then_found_its_serving_layer_moved_records_its_alias_move(tmp_path):
    """The automatic rollback moves the alias (verified), then finds the serving layer moved
    by somebody to a third version and leaves it alone: failed, at its first attempt. The
    next poll took the rollback's own alias move for somebody's deploy (a person's response,
    v2 left unblamed by it); it is the rollback's, as for one that failed on a later attempt."""
    layer = Erratic(acts=False)
    layer.serving = "3"  # somebody deployed v3 to the serving layer by hand
    vigil, reg = with_layer(tmp_path, layer)
    report = vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: the alias moves, the layer is left alone
    assert report.rollback is not None and report.rollback["status"] == "failed", report.rollback
    assert "somebody moved it since" in report.rollback["detail"], report.rollback
    assert reg.aliases[(MODEL, "champion")] == "1", "precondition: the alias moved"
    deploys = len(vigil.store.deploys(MODEL))
    vigil.run_cycle(MODEL, T0 + 60)
    [last] = vigil.store.deploys(MODEL)[deploys:]
    assert (last.version, last.previous_version, last.source) == ("1", "2", "rollback"), last


def test_which_failed_rollbacks_made_a_move_reads_alike_on_postgresql(postgres_url):
    """`gave_up_moving` on PostgreSQL: a failed attempt, or a verified step (steps_done is
    JSON there too), and one asked at the read's very time."""
    store = Store(fresh_schema_url(postgres_url))
    try:
        with store.tx() as s:
            common = {"model": MODEL, "incident_id": None, "action_id": None, "from_version": "2", "to_version": "1",
                      "executors": ["mlflow_alias", "webhook"], "fencing_token": None, "actor": "vigil",
                      "reason": "test", "next_attempt_at": 0.0}
            nothing = add_intent(s, **common, created_at=10.0, updated_at=20.0)
            stepped = add_intent(s, **{**common, "model": "other"}, created_at=10.0, updated_at=20.0)
            for row, steps in ((nothing, []), (stepped, ["mlflow_alias"])):
                row.status, row.steps_done = ActionStatus.FAILED, steps
        with store.tx() as s:
            assert gave_up_moving(s, MODEL, "2", "1", 15.0) is None  # never tried, nothing verified
            assert gave_up_moving(s, "other", "2", "1", 15.0) == stepped.id
            assert gave_up_moving(s, "other", "2", "1", 20.0) is None  # a read since it failed
            assert gave_up_moving(s, "other", "2", "1", 10.0) == stepped.id  # read when it was asked
    finally:
        store.close()
