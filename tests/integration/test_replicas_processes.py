"""Replicas as separate processes on one real PostgreSQL (tests/replica_worker.py): two, then
a third joining; one killed with SIGKILL, its models taken over within two intervals; one
stopped with SIGSTOP past its leases, whose stale writes the fence refuses when it resumes.
Every write any replica made went through the fence, so per model the tokens of the
committed writes never go down."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.replicas import LeaseTiming, assign
from monitor.store.repository import Store
from tests.helpers_replicas import Sampler, db_leases, fresh_schema_url, wait_until

REPO = Path(__file__).resolve().parents[2]
# The promise is in intervals (README: a killed replica's models move within two; the lease
# arithmetic, TIMING.takeover_bound = 4/3 of one, leaves 2/3 for the survivors' rebalance to
# run). What it cannot cover is the time a loaded machine keeps a worker off the CPU: at
# 1.5 s (renewals every 0.5 s, 0.5 s of slack) takeovers on the shared 2-core CI machine
# measured 1.74-2.62 s against 3 s, and 3 of 10 runs never settled (a starved worker's
# leases lapsing between its renewals). At 3 s the slack is 2 s and each worker asks half
# the CPU per second; the bounds below stay the promised multiples of the interval.
INTERVAL = 3.0
TIMING = LeaseTiming.for_interval(INTERVAL)
# PostgreSQL ends a transaction left idle this long (`leases.IDLE_TX_TIMEOUT_S`, 120 s), at
# the test's scale as in test_paused_writer_takeover.py: a replica stopped inside a fenced
# write holds that model's lease row FOR SHARE, and a takeover skips the row until then.
IDLE_TX_TIMEOUT = INTERVAL
MODELS = [f"m{i:03d}" for i in range(60)]


class Worker:
    def __init__(self, url: str, out: Path) -> None:
        self.out = out
        with open(out, "w") as f:  # the child keeps its own copy of the descriptor
            args = [url, str(len(MODELS)), str(INTERVAL), str(IDLE_TX_TIMEOUT)]
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.replica_worker", *args], cwd=REPO, stdout=f,
                                         stderr=subprocess.STDOUT)
        wait_until(lambda: self.out.read_text().startswith("{"), timeout=30, step=0.05)
        self.replica_id = json.loads(self.out.read_text().splitlines()[0])["replica"]

    def lines(self) -> list[dict]:
        return [json.loads(x) for x in self.out.read_text().splitlines() if x.startswith("{")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def url(postgres_url: str) -> str:
    url = fresh_schema_url(postgres_url)
    store = Store(url)
    with store.engine.begin() as c:
        c.execute(text("create table fenced_writes (id bigserial primary key, model text not null, "
                       "owner text not null, token bigint not null)"))
    store.close()
    return url


@pytest.fixture
def watcher(url: str) -> Iterator[Store]:
    store = Store(url)
    yield store
    store.close()


def _settled(store: Store, workers: list[Worker]) -> bool:
    want = assign(MODELS, [w.replica_id for w in workers])
    rows = db_leases(store)
    return all(m in rows and rows[m].valid and rows[m].owner == want[m] for m in MODELS)


@pytest.mark.slow
def test_processes_share_models_take_over_from_a_killed_one_and_fence_a_stopped_one(url, watcher, tmp_path):
    workers: list[Worker] = []
    sampler = Sampler(watcher, [])  # the database side: tokens never go down nor change hands unbumped
    sampler.start()
    try:
        workers += [Worker(url, tmp_path / "a.out"), Worker(url, tmp_path / "b.out")]
        wait_until(lambda: _settled(watcher, workers), timeout=20)
        workers.append(Worker(url, tmp_path / "c.out"))
        wait_until(lambda: _settled(watcher, workers), timeout=4 * INTERVAL)
        a, b, c = workers
        owners = [sum(1 for ls in db_leases(watcher).values() if ls.owner == w.replica_id) for w in workers]
        assert min(owners) >= len(MODELS) // 6, owners

        wait_until(lambda: _writes_by(watcher, c.replica_id) > 0, timeout=2 * INTERVAL)
        c_models = {m for m, ls in db_leases(watcher).items() if ls.owner == c.replica_id}
        c.proc.send_signal(signal.SIGKILL)
        takeover = wait_until(lambda: all(
            (ls := db_leases(watcher)[m]).valid and ls.owner in (a.replica_id, b.replica_id) for m in c_models),
            timeout=4 * INTERVAL)
        print(f"takeover after SIGKILL: {takeover:.2f} s (interval {INTERVAL} s, bound {TIMING.takeover_bound} s)")
        assert takeover <= 2 * INTERVAL  # the README's promise, TIMING.takeover_bound plus the rebalance's run
        wait_until(lambda: _settled(watcher, [a, b]), timeout=2 * INTERVAL)

        # Paused past its leases: A takes everything, within TIMING.takeover_bound; a model whose
        # row B's fenced write held when the signal came, once PostgreSQL ended that write's
        # transaction: IDLE_TX_TIMEOUT + renew_every = 4/3 interval at worst, both under 4 intervals.
        b.proc.send_signal(signal.SIGSTOP)
        wait_until(lambda: all(ls.valid and ls.owner == a.replica_id for ls in db_leases(watcher).values()),
                   timeout=4 * INTERVAL, what="every lease with A")
        resumed_at = len(b.lines())
        b.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: _settled(watcher, [a, b]), timeout=4 * INTERVAL)
        # B's tick can settle the leases before its stale writes are refused and printed
        # (4 intervals, as the waits above: on a loaded CI machine 2 were once not enough)
        wait_until(lambda: any("lost" in x for x in b.lines()[resumed_at:]), timeout=4 * INTERVAL,
                   what="a refused write of the resumed replica's stale tokens")
    finally:
        for w in workers:
            w.stop()
        sampler.halt()
    assert sampler.samples > 50 and sampler.violations == []
    _assert_fenced_writes_ordered(watcher)


def _writes_by(store: Store, owner: str) -> int:
    with store.engine.connect() as c:
        return int(c.execute(text("select count(*) from fenced_writes where owner = :o"), {"o": owner}).scalar_one())


def _assert_fenced_writes_ordered(store: Store) -> None:
    with store.engine.connect() as c:
        rows = c.execute(text("select model, owner, token from fenced_writes order by id")).all()
    last: dict[str, tuple[str, int]] = {}
    for model, owner, token in rows:
        if model in last:
            prev_owner, prev_token = last[model]
            assert token >= prev_token, f"{model}: a write under token {token} after one under {prev_token}"
            assert token > prev_token or owner == prev_owner
        last[model] = (owner, token)
    assert len({o for _, o, _ in rows}) == 3 and len(rows) > 100
