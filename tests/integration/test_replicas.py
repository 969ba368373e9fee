"""Several replicas on one real PostgreSQL, as threads of this process: models split by
rendezvous hashing, never held twice, rebalanced on join and leave; a paused replica is
fenced; a fenced writer holds off a takeover until it commits; acquisition is race-free."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from monitor.replicas import LeaseLost, LeaseMetrics, LeaseTiming, Membership, assign
from monitor.store import leases as sql
from monitor.store.repository import ModelStateRow, Store
from tests.helpers_replicas import Sampler, Ticker, converged, db_leases, fresh_schema_url, wait_until

INTERVAL = 1.5  # the cycle interval the leases are timed for: renew every 0.5 s, leases last 1.5 s
TIMING = LeaseTiming.for_interval(INTERVAL)


@pytest.fixture
def url(postgres_url: str) -> str:
    return fresh_schema_url(postgres_url)


@pytest.fixture
def stores(url: str) -> Iterator[list[Store]]:
    """One store (engine, pool) per replica plus one for the test, as separate processes would have."""
    made = [Store(url) for _ in range(4)]
    yield made
    for s in made:
        s.close()


def _start(store: Store, models: list[str], tickers: list[Ticker]) -> Membership:
    m = Membership(store, TIMING)
    t = Ticker(m, models)
    tickers.append(t)
    t.start()
    return m


def test_replicas_split_models_rebalance_on_join_and_leave_and_never_hold_one_twice(stores):
    models = [f"join-{i:03d}" for i in range(300)]
    tickers: list[Ticker] = []
    a, b = _start(stores[0], models, tickers), _start(stores[1], models, tickers)
    sampler = Sampler(stores[3], [a, b])
    sampler.start()
    try:
        wait_until(lambda: converged(stores[3], models, [a, b]), timeout=4 * INTERVAL)
        before = assign(models, [a.replica_id, b.replica_id])
        c = _start(stores[2], models, tickers)
        sampler.replicas = [a, b, c]
        joined_in = wait_until(lambda: converged(stores[3], models, [a, b, c]), timeout=4 * INTERVAL)
        after = assign(models, [a.replica_id, b.replica_id, c.replica_id])
        moved = {m for m in models if after[m] != before[m]}
        assert moved and all(after[m] == c.replica_id for m in moved)  # nothing moved between A and B
        assert 0.25 * len(models) <= len(c.owned()) <= 0.42 * len(models)  # about 1/3
        assert joined_in <= 2 * INTERVAL

        tickers[-1].halt()
        c.leave()  # a clean shutdown hands its models back at once, to their old owners
        left_in = wait_until(lambda: converged(stores[3], models, [a, b]), timeout=4 * INTERVAL)
        assert left_in <= 2 * TIMING.renew_every + 0.5
    finally:
        sampler.halt()
        for t in tickers:
            t.halt()
    assert sampler.samples >= 10 and sampler.violations == []  # a sample takes ~10-50 ms; the test ~1-3 s
    assert [e for t in tickers for e in t.errors] == []


def test_a_paused_replica_loses_its_leases_and_its_write_is_rolled_back(stores):
    models = [f"pause-{i:02d}" for i in range(20)]
    tickers: list[Ticker] = []
    registry = CollectorRegistry()
    metrics = LeaseMetrics(registry)
    a = Membership(stores[0], TIMING, metrics=metrics)
    tickers.append(Ticker(a, models))
    tickers[0].start()
    b = _start(stores[1], models, tickers)
    try:
        wait_until(lambda: converged(stores[3], models, [a, b]), timeout=4 * INTERVAL)
        had = a.owned()
        model, token = sorted(had.items())[0]
        tickers[0].paused.set()  # A stops: no heartbeat, no renewal (a GC stall, a stopped VM)
        taken_in = wait_until(lambda: set(b.owned()) == set(models), timeout=4 * INTERVAL)
        assert taken_in <= 2 * INTERVAL  # the promise (LeaseTiming); the bound is 4/3 of it plus run time
        assert a.owned() == {}  # A's own belief ended with its lease
        new = db_leases(stores[3])[model]
        assert new.owner == b.replica_id and new.token > token

        with pytest.raises(LeaseLost) as lost, stores[0].tx() as s:  # A resumes mid-cycle, with its old token
            s.add(ModelStateRow(model=model, slo_streaks={}, detector_state={}, quiet_cycles=99))
            s.flush()
            a.fence.check(s, model, token)
        assert lost.value.current_owner == b.replica_id and lost.value.token == token
        assert b.replica_id in str(lost.value) and model in str(lost.value)
        with stores[3].tx() as s:
            assert s.get(ModelStateRow, model) is None  # the write was rolled back
            b.fence.check(s, model, new.token)  # the new owner's token passes
        change = a.tick(models)  # A's next tick learns what it lost
        assert change.lost == sorted(had) and change.owned == {}  # B holds them until it hands A's share back
        assert registry.get_sample_value("vigil_lease_losses_total") == len(had)
        assert registry.get_sample_value("vigil_models_owned") == 0
        assert registry.get_sample_value("vigil_lease_acquisitions_total") >= len(had)
    finally:
        for t in tickers:
            t.halt()


def test_a_fenced_writer_holds_off_the_takeover_until_it_commits(stores):
    model = "slow-writer"
    # Leases twice as long as the other tests': a lease is counted from before its tick, and on a
    # loaded 2-core CI machine a tick took longer than 1.5 s, so A held nothing by its first read.
    timing = LeaseTiming.for_interval(2 * INTERVAL)
    a, b = Membership(stores[0], timing), Membership(stores[1], timing)
    token = a.tick([model]).owned.get(model)
    assert token is not None
    committed_at: list[float] = []

    def slow_cycle() -> None:  # checks its fence, then outlives its lease inside the transaction
        with stores[0].tx() as s:
            a.fence.check(s, model, token)
            time.sleep(timing.lease_ttl + 1.0)
            s.add(ModelStateRow(model=model, slo_streaks={}, detector_state={}, quiet_cycles=7))
            committed_at.append(time.monotonic())

    writer = threading.Thread(target=slow_cycle)
    writer.start()
    time.sleep(timing.lease_ttl + 0.3)  # A's lease has expired; B would take it now if it could
    while writer.is_alive():
        b.tick([model])  # SKIP LOCKED: the row A's transaction holds FOR SHARE is left alone
        assert model not in b.owned() or committed_at, "took over before the fenced write committed"
        time.sleep(0.1)
    wait_until(lambda: model in b.tick([model]).owned, timeout=2 * timing.lease_ttl, step=0.1)
    with stores[1].tx() as s:
        assert s.get(ModelStateRow, model).quiet_cycles == 7  # the new owner reads what A wrote
    assert b.token(model) == token + 1


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_acquisitions_hand_each_model_to_exactly_one_replica(backend, url, tmp_path):
    db = url if backend == "postgresql" else f"sqlite:///{tmp_path / 'v.db'}"
    models = [f"race-{i:02d}" for i in range(40)]
    stores = [Store(db) for _ in range(6)]
    results: list[dict[str, int]] = [{} for _ in stores]
    go = threading.Barrier(len(stores))
    with stores[0].tx() as s:  # the rows exist (inserting them would queue the racers on the key)
        for i in range(len(stores)):  # all live: a lease held by a live replica is not up for grabs
            sql.upsert_replica(s, f"r{i}", "h", i)
        sql.acquire(s, "r0", models, 30.0, 30.0)
        sql.release_all(s, "r0")

    def grab(i: int) -> None:
        order = models if i % 2 else models[::-1]  # all race for the same rows at once
        go.wait()
        for m in order:
            for _ in range(50):  # SQLite refuses a write racing another with "database is locked": retry
                try:
                    with stores[i].tx() as s:
                        results[i].update(sql.acquire(s, f"r{i}", [m], 30.0, 30.0))
                    break
                except OperationalError as e:  # only the lock error is expected
                    assert "locked" in str(e)
                    time.sleep(0.01)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    won = [m for r in results for m in r]
    assert sorted(won) == models  # each model exactly once
    assert {tok for r in results for tok in r.values()} == {2}
    rows = db_leases(stores[0])
    assert all(rows[m].owner == f"r{i}" for i, r in enumerate(results) for m in r)
    for s in stores:
        s.close()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_tokens_strictly_increase_on_every_change_of_owner(backend, url, tmp_path):
    store = Store(url if backend == "postgresql" else f"sqlite:///{tmp_path / 'v.db'}")
    seen: list[int] = []

    def take(owner: str, live_ttl: float = 30.0) -> int:
        with store.tx() as s:
            sql.upsert_replica(s, owner, "h", 1)
            got = sql.acquire(s, owner, ["tok"], 0.3, live_ttl)
        seen.append(got["tok"])
        return got["tok"]

    take("a")
    with store.tx() as s:
        assert sql.acquire(s, "b", ["tok"], 0.3, 30.0) == {}  # live and unexpired: not B's to take
        sql.release(s, "a", ["tok"])
    take("b")  # released: taken at once, under a new token
    time.sleep(0.4)
    take("a")  # expired
    take("c", live_ttl=0.0)  # A counts as dead (no heartbeat within 0 s): taken before expiry
    with store.tx() as s:
        sql.release_all(s, "c")
        sql.remove_replica(s, "c")
    take("c")  # the same replica again after letting go: still a new token
    assert seen == sorted(set(seen)) and len(seen) == 5
    store.close()


def test_a_replica_cut_off_from_the_database_stops_counting_the_leases_it_lost(stores, monkeypatch):
    """vigil_models_owned kept the last tick's count while every heartbeat failed: a replica
    cut off from PostgreSQL, whose leases had long lapsed (its models run elsewhere), still
    said it owned them all. A failed tick now exports what it still holds."""
    import time

    registry = CollectorRegistry()
    a = Membership(stores[0], TIMING, metrics=LeaseMetrics(registry))
    a.tick(["cut-0", "cut-1"])
    assert registry.get_sample_value("vigil_models_owned") == 2

    def unreachable():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(a.store, "tx", unreachable)
    time.sleep(TIMING.lease_ttl + 0.1)
    with pytest.raises(OperationalError):
        a.tick(["cut-0", "cut-1"])
    assert a.owned() == {}
    assert registry.get_sample_value("vigil_models_owned") == 0
    assert registry.get_sample_value("vigil_lease_heartbeat_errors_total") == 1


def test_a_cycle_holding_one_lease_row_does_not_hold_up_the_renewal_of_the_others(stores):
    """A renewal is one UPDATE of every lease the replica holds; it waited for each row a
    cycle's fenced transaction holds FOR SHARE, one after the other, while the rest of the
    leases ran out: under load the replica lost models to itself (new tokens, cycles refused
    as 'lease lost', gauges dropped). Seen with 120 models, 10 sweep threads, interval 10 s."""
    models = [f"m{i:02d}" for i in range(10)]
    a = Membership(stores[0], TIMING)
    a.tick(models)
    tokens = a.owned()
    assert sorted(tokens) == models
    busy = models[0]  # the first row the renewal's UPDATE meets

    def long_cycle_transaction() -> None:  # a cycle's transaction outliving the lease
        with stores[0].tx() as s:
            a.fence.check(s, busy, tokens[busy])
            time.sleep(TIMING.lease_ttl + 1.0)

    cycle = threading.Thread(target=long_cycle_transaction)
    cycle.start()
    time.sleep(0.1)
    lost: list[str] = []
    while cycle.is_alive():
        lost += a.tick(models).lost
        time.sleep(TIMING.renew_every)
    cycle.join()
    lost += a.tick(models).lost
    others = {m: tok for m, tok in a.owned().items() if m != busy}
    assert set(lost) <= {busy}, f"leases lost while one row was busy: {sorted(set(lost) - {busy})}"
    assert others == {m: tokens[m] for m in models if m != busy}, "the other models kept their leases and tokens"


def test_cycles_using_up_the_connection_pool_do_not_hold_up_the_lease_renewal(stores):
    """The heartbeat took its connection from the pool the cycles and the API share (5 + 10
    on PostgreSQL); `schedule.sweep_workers` cycles (the core count by default) past that
    queued it behind them, and the replica's leases ran out while it waited."""
    from sqlalchemy import text

    models = [f"p{i}" for i in range(4)]
    a = Membership(stores[0], TIMING)
    a.tick(models)
    tokens = a.owned()
    pool = stores[0].engine.pool
    capacity = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    started = threading.Barrier(capacity + 1)

    def cycle_transaction() -> None:
        with stores[0].tx() as s:
            s.execute(text("SELECT 1"))
            started.wait()
            time.sleep(TIMING.lease_ttl + 1.0)

    cycles = [threading.Thread(target=cycle_transaction) for _ in range(capacity)]
    for c in cycles:
        c.start()
    started.wait(timeout=30)  # every pooled connection is in a cycle now
    lost: list[str] = []
    while any(c.is_alive() for c in cycles):
        lost += a.tick(models).lost
        time.sleep(TIMING.renew_every)
    for c in cycles:
        c.join()
    lost += a.tick(models).lost
    assert lost == [] and a.owned() == tokens, f"leases lost while the cycles held every connection: {lost}"


def test_a_lease_taken_over_while_the_renewal_waited_for_its_row_is_not_kept(stores):
    """A row locked by another replica's takeover is waited for briefly like a busy one; once
    the takeover commits, the lease is not ours any more and must not be counted as held."""
    from sqlalchemy import select, update

    model = "taken-while-waiting"
    a = Membership(stores[0], TIMING)
    a.tick([model])
    locked, done = threading.Event(), threading.Event()

    def takeover() -> None:  # as acquire() does for a replica it no longer sees live
        with stores[1].tx() as s:
            s.execute(select(sql.ModelLeaseRow).where(sql.ModelLeaseRow.model == model).with_for_update())
            locked.set()
            time.sleep(0.3)
            s.execute(update(sql.ModelLeaseRow).where(sql.ModelLeaseRow.model == model)
                      .values(owner="b", token=sql.ModelLeaseRow.token + 1))
        done.set()

    thief = threading.Thread(target=takeover)
    thief.start()
    locked.wait(timeout=10)
    with stores[0].tx() as s:
        held = sql.renew(s, a.replica_id, TIMING.lease_ttl, busy_wait_s=5.0)
    thief.join()
    assert done.is_set() and model not in held, held


def test_a_renewal_waiting_longer_than_the_lock_timeout_keeps_what_the_busy_lease_has_left(url, monkeypatch):
    """A long interval gives a renewal's wait for a row its own cycle holds (interval/12) more
    than the connections' `lock_timeout`: that wait ending is the same "still busy", not a
    failed heartbeat (which lost every lease of the replica)."""
    monkeypatch.setattr(sql, "LOCK_TIMEOUT_S", 0.3)
    model, store = "busy-past-the-lock-timeout", Store(url)
    a = Membership(store, TIMING)
    a.tick([model])
    token = a.token(model)
    assert token is not None
    with store.tx() as cycle:
        a.fence.check(cycle, model, token)  # its cycle holds the row FOR SHARE
        with store.tx() as s:
            held = sql.renew(s, a.replica_id, TIMING.lease_ttl, busy_wait_s=2.0)
    store.close()
    assert held.get(model, (None,))[0] == token, held


def test_a_leave_whose_release_fails_still_closes_the_lease_connection(stores, monkeypatch):
    """Shutting down while the database refuses the release (a lock timeout, a failover): the
    error is raised, and the heartbeat's own connection is closed all the same, not left open
    on the server until the process exits."""
    from sqlalchemy import text

    a = Membership(stores[0], TIMING)
    a.tick(["leave-0"])
    with a.store.tx() as s:
        pid = s.execute(text("select pg_backend_pid()")).scalar_one()

    def refused(s, replica_id):
        raise OperationalError("UPDATE leases", {}, Exception("canceling statement due to lock timeout"))

    monkeypatch.setattr(sql, "release_all", refused)
    with pytest.raises(OperationalError):
        a.leave()

    def still_open() -> bool:
        with stores[3].tx() as s:
            return bool(s.execute(text("select count(*) from pg_stat_activity where pid = :p"), {"p": pid})
                        .scalar_one())

    deadline = time.monotonic() + 5
    while still_open() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not still_open(), "the lease pool's connection is still open on the server"
