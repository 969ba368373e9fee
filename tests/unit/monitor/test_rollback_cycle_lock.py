"""A rollback asked outside a cycle (the API, a Slack button) on the process that runs the
model's cycles drove its layers in the API's thread while that process's own cycle of the
model ran beside it, reconciling the same intent: on the lease holder under the same fence, and
on one daemon alone on SQLite with no fence at all. Both could read a layer at the old version
and both write it (a second KServe patch, a second deploy webhook call). Now the asked drive
takes the model's cycle lock: with a cycle running it answers pending at once (202), and the
cycle (this one or the next) moves the layers, each once."""
from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from alerts.rollback import ActionStatus
from monitor.cycle.rollback_intents import RollbackAsk
from monitor.executors.base import RollbackStep, Verification
from monitor.executors.build import alias_executor
from monitor.vigil import Vigil
from tests.fakes.kube_api import FakeKubeApi
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_rollback_cancel_fence import HeldBy, kserve_vigil
from tests.unit.monitor.test_rollback_cancel_fence import kube as kube  # noqa: F401  (the fixture)

WAIT_S = 10.0


def pause_cycle_at_alias_poll(reg: Any) -> tuple[threading.Event, threading.Event]:
    """The registry's alias read on a thread named `cycle` waits for `release`, once `entered` is
    set: a cycle of the model caught mid-way (its registry poll)."""
    entered, release, read = threading.Event(), threading.Event(), reg.alias_version

    def alias_version(name: str, alias: str) -> str | None:
        if threading.current_thread().name == "cycle" and not entered.is_set():
            entered.set()
            assert release.wait(WAIT_S)
        return read(name, alias)
    reg.alias_version = alias_version
    return entered, release


def test_an_api_rollback_on_the_lease_holder_while_its_cycle_runs_is_left_to_the_cycle(
        tmp_path: Path, kube: FakeKubeApi) -> None:  # noqa: F811
    fence = HeldBy("replica-a", "replica-a")
    vigil, reg = kserve_vigil(tmp_path, kube, fence)
    entered, release = pause_cycle_at_alias_poll(reg)
    cycle = threading.Thread(target=vigil.run_cycle, args=(MODEL, T0), kwargs={"token": 7}, name="cycle")
    cycle.start()
    try:
        assert entered.wait(WAIT_S)
        began = time.monotonic()
        got = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "ctr down", "api:alice", None, T0))
        took = time.monotonic() - began
    finally:
        release.set()
        cycle.join(WAIT_S)
    assert reg.moves == [] and kube.writes() == [], "the API moved a layer beside the model's running cycle"
    assert got.status == ActionStatus.PENDING and got.own, got.detail
    assert "cycle" in got.detail and "running" in got.detail, got.detail
    assert took < 5, f"the API waited {took:.1f} s for the cycle"
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.PENDING
    vigil.run_cycle(MODEL, T0 + 60, token=7)  # the next cycle moves it, each layer once
    assert reg.moves == [(MODEL, "champion", "1")] and [w.method for w in kube.writes()] == ["PATCH"]


class Meeting:
    """A serving layer (a deploy webhook, say) serving v2 whose reads in a rollback's drive wait, up
    to a second and a half, for a second reader: two drivers overlapping both read v2, both write."""

    name = "webhook"

    def __init__(self) -> None:
        self.serving, self.writes = "2", 0
        self.reading = threading.Event()
        self._both = threading.Barrier(2, timeout=1.5)

    def current(self, step: RollbackStep) -> str | None:
        if not step.key:  # read before the intent is recorded (is there anything to move?)
            return self.serving
        self.reading.set()
        with contextlib.suppress(threading.BrokenBarrierError):  # broken: nobody else reading at the same time
            self._both.wait()
        return self.serving

    def apply(self, step: RollbackStep) -> None:
        self.writes += 1
        self.serving = step.to_version

    def verify(self, step: RollbackStep) -> Verification:
        return Verification(self.serving == step.to_version, self.serving, f"serves v{self.serving}")


def one_daemon(tmp_path: Path) -> tuple[Vigil, Any, Meeting]:
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path), registry=reg)  # SQLite, no fence: one daemon alone
    layer = Meeting()
    vigil._layers[MODEL] = [alias_executor(reg, "champion"), layer]
    return vigil, reg, layer


def test_an_api_rollback_racing_the_one_daemons_cycle_writes_each_layer_once(tmp_path: Path) -> None:
    vigil, reg, layer = one_daemon(tmp_path)
    asked: list[Any] = []
    api = threading.Thread(target=lambda: asked.append(vigil.operator.rollback(
        RollbackAsk(vigil.config.model(MODEL), "1", "ctr down", "api:alice", None, T0))), name="api")
    api.start()
    try:
        assert layer.reading.wait(WAIT_S)  # the API's drive has moved the alias and reads the webhook's layer
        cycle = threading.Thread(target=vigil.run_cycle, args=(MODEL, T0 + 1), name="cycle")
        cycle.start()  # its reconcile finds the intent pending
        cycle.join(WAIT_S)
    finally:
        api.join(WAIT_S)
    assert layer.writes == 1, f"the webhook's layer was written {layer.writes} times"
    assert reg.moves == [(MODEL, "champion", "1")]
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.DONE, action.detail
    assert asked and asked[0].status == ActionStatus.DONE, asked


class AskedDuringSweep:
    """The sweep's worker processes (monitor/sweep_pool.py), stood in for: while they run the
    chunks, on-call asks the API for a rollback of one of the swept models."""

    def __init__(self, ask: RollbackAsk) -> None:
        self.ask, self.asked = ask, []  # type: ignore[var-annotated]

    def sweep(self, vigil: Vigil, t: float, names: list[str], token: Any, processes: int,
              finished: Any = None) -> list[Any]:
        api = threading.Thread(target=lambda: self.asked.append(vigil.operator.rollback(self.ask)), name="api")
        api.start()
        api.join(WAIT_S)
        return []

    def close(self, wait: bool = False, timeout: float | None = None) -> bool:
        return True


def test_an_api_rollback_while_sweep_workers_run_the_models_cycles_is_left_to_them(tmp_path: Path) -> None:
    """A cycle in a worker process is this daemon's too: its lock is held for the worker's sweep."""
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path, models=[model_config(), model_config("ranker")]), registry=reg)
    vigil.own_sources = True  # as the daemon's: its sweeps go to worker processes
    pool = AskedDuringSweep(RollbackAsk(vigil.config.model(MODEL), "1", "ctr down", "api:alice", None, T0))
    vigil.sweep_pool = pool  # type: ignore[assignment]
    vigil.run_sweep(T0, processes=2)
    [got] = pool.asked
    assert reg.moves == [], "the API moved the alias beside the workers' cycle of the model"
    assert got.status == ActionStatus.PENDING and "cycle" in got.detail, got.detail
    vigil.run_cycle(MODEL, T0 + 60)  # the model's next cycle moves it
    assert reg.moves == [(MODEL, "champion", "1")]


def test_an_api_rollback_after_a_reload_waits_for_the_replaced_configurations_running_cycle(tmp_path: Path) -> None:
    """A reload swaps in a new Vigil while a cycle still runs on the old one: the API asks the new."""
    from monitor.daemon import Runtime

    reg = serving_registry(version="2")
    cfg = make_config(tmp_path)
    runtime = Runtime(make_vigil(cfg, registry=reg), None)
    old = runtime.vigil
    entered, release = pause_cycle_at_alias_poll(reg)
    cycle = threading.Thread(target=old.run_cycle, args=(MODEL, T0), name="cycle")
    cycle.start()
    try:
        assert entered.wait(WAIT_S)
        runtime.swap(make_vigil(cfg, registry=reg))  # the reloaded configuration
        got = runtime.vigil.operator.rollback(RollbackAsk(cfg.model(MODEL), "1", "ctr down", "api:alice", None, T0))
    finally:
        release.set()
        cycle.join(WAIT_S)
    assert reg.moves == [], "the API moved the alias beside the replaced configuration's running cycle"
    assert got.status == ActionStatus.PENDING and "cycle" in got.detail, got.detail


def test_a_model_whose_sweep_chunk_is_done_is_rolled_back_at_once_while_other_chunks_run(tmp_path: Path) -> None:
    """The sweep held every model's lock until its last worker finished: on-call's rollback of a
    model whose chunk was done answered 202 pending for the rest of the sweep. A chunk's locks go
    when its worker hands it back; a model whose chunk still runs is still left to its cycle."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from monitor.sweep_pool import ChunkOutcome, SweepPool

    reg = serving_registry(version="2")
    for v in ("1", "2"):
        reg.add_version("ranker", v, created_at=T0 - 30 * 86400)
    reg.aliases[("ranker", "champion")] = "2"
    vigil = make_vigil(make_config(tmp_path, models=[model_config(), model_config("ranker")]), registry=reg)
    vigil.own_sources = True  # as the daemon's: its sweeps go to worker processes
    vigil.model_locks.wait_s = 5.0  # time enough for the sweep to hand a finished chunk's locks back
    pool, threads = SweepPool(Vigil, vigil.config), ThreadPoolExecutor(2)
    assert pool.assign([MODEL, "ranker"], 2) == [["ranker"], [MODEL]]  # one chunk each
    handed_back, release = threading.Event(), threading.Event()

    def chunk(chunk: Any) -> ChunkOutcome:  # a worker process, stood in for
        if chunk.models == ["ranker"]:
            assert release.wait(WAIT_S)  # still running its cycles
        else:
            handed_back.set()
        return ChunkOutcome(0, [], {})

    def submit(i: int, c: Any) -> Future[ChunkOutcome]:
        return threads.submit(chunk, c)
    pool._submit = submit  # type: ignore[method-assign]
    vigil.sweep_pool = pool
    sweep = threading.Thread(target=vigil.run_sweep, args=(T0,), kwargs={"processes": 2}, name="sweep")
    sweep.start()
    try:
        assert handed_back.wait(WAIT_S)
        done = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "ctr down", "api:alice", None, T0))
        left = vigil.operator.rollback(RollbackAsk(vigil.config.model("ranker"), "1", "ctr down", "api:bob", None, T0))
    finally:
        release.set()
        sweep.join(WAIT_S)
        threads.shutdown()
    assert done.status == ActionStatus.DONE, f"{done.status}: {done.detail}"
    assert left.status == ActionStatus.PENDING and "cycle" in left.detail, left.detail
    assert reg.moves == [(MODEL, "champion", "1")], "ranker moved beside its chunk's cycles"
