"""A replica paused in the middle of a fenced transaction (a stopped VM, a long GC stall,
SIGSTOP) holds its lease row FOR SHARE, and a takeover skips a locked row: without a bound
its models were never taken over while it stayed paused (PostgreSQL keeps the session of a
silent client for hours). PostgreSQL now ends a transaction left idle past
`leases.IDLE_TX_TIMEOUT_S`: the lock goes, another replica takes the model over, and the
paused replica's write fails when it resumes."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import DBAPIError

from monitor.replicas import LeaseTiming, Membership
from monitor.store import leases
from monitor.store.repository import ModelStateRow, Store
from tests.helpers_replicas import fresh_schema_url, wait_until

TIMING = LeaseTiming.for_interval(1.5)
MODEL = "paused-mid-write"


@pytest.fixture
def stores(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Store]]:
    monkeypatch.setattr(leases, "IDLE_TX_TIMEOUT_S", 2.0)  # the test's scale: leases of 1.5 s
    url = fresh_schema_url(postgres_url)
    made = [Store(url) for _ in range(2)]
    yield made
    for s in made:
        s.close()


def test_a_replica_paused_inside_a_fenced_transaction_loses_the_model_to_another(stores):
    a, b = Membership(stores[0], TIMING), Membership(stores[1], TIMING)
    a.tick([MODEL])
    token = a.token(MODEL)
    assert token is not None
    resume, outcome = threading.Event(), []

    def paused_cycle() -> None:
        try:
            with stores[0].tx() as s:
                a.fence.check(s, MODEL, token)
                resume.wait(30)  # paused here, its lease row held FOR SHARE
                s.add(ModelStateRow(model=MODEL, slo_streaks={}, detector_state={}, quiet_cycles=7))
            outcome.append("committed")
        except DBAPIError as e:
            outcome.append(f"refused: {type(e.orig).__name__}")

    writer = threading.Thread(target=paused_cycle)
    writer.start()
    try:
        wait_until(lambda: MODEL in b.tick([MODEL]).owned, timeout=15, step=0.2, what="takeover by B")
    finally:
        resume.set()
        writer.join(10)
    assert outcome and outcome[0].startswith("refused")
    with stores[1].tx() as s:
        assert s.get(ModelStateRow, MODEL) is None  # the paused replica's write never landed
