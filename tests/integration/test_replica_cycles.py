"""Issue 11, row 3 at the level of whole cycles, on the real PostgreSQL: a replica whose
lease was taken over cannot write any part of its cycle (incident, outbox, rollback),
and two rollbacks asked at once on two replicas move the alias once (the lease holder moves it)."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.cycle.rollback_intents import RollbackAsk
from monitor.replicas import LeaseLost, LeaseTiming, Membership
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.helpers_replicas import fresh_schema_url, wait_until
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry


def replica(tmp_path: Path, url: str, registry: Any, name: str, lease_ttl: float = 3.0) -> tuple[Vigil, Membership]:
    cfg = make_config(tmp_path / name, store={"url": url})
    vigil = make_vigil(cfg, registry=registry, prometheus=incident_prometheus(bad_from=T0 - 300))
    # a lease long enough for a whole cycle on a loaded machine: `a`'s healthy cycle has no heartbeat
    membership = Membership(vigil.store, LeaseTiming(renew_every=1.0, lease_ttl=lease_ttl), replica_id=name)
    vigil.fence, vigil.lease_token = membership.fence, membership.token  # as monitor/startup.take_ownership
    return vigil, membership


@pytest.fixture
def url(postgres_url: str) -> str:
    return fresh_schema_url(postgres_url)


def test_a_replica_that_lost_its_lease_writes_nothing_of_its_cycle(tmp_path, url):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    reg = serving_registry()
    a, ma = replica(tmp_path, url, reg, "a", lease_ttl=60.0)  # held through the drive on a loaded machine
    ma.tick([MODEL])
    token_a = ma.token(MODEL)
    assert token_a is not None
    a.run_cycle(MODEL, T0 - 600, token=token_a)  # a healthy cycle under the lease

    # `a` stalls (no heartbeat); its lease expires and `b` takes the model over.
    b, mb = replica(tmp_path, url, reg, "b")
    wait_until(lambda: bool(mb.tick([MODEL]).owned), timeout=10, step=0.2)
    assert mb.token(MODEL) is not None and mb.token(MODEL) != token_a

    before = Store(url)
    counts = (len(before.all_incidents()), before.outbox_counts(), len(before.audit_entries()))
    with pytest.raises(LeaseLost):
        for t in (T0 - 300, T0, T0 + 60):  # would open a critical incident and page
            a.run_cycle(MODEL, t, token=token_a)
    assert (len(before.all_incidents()), before.outbox_counts(), len(before.audit_entries())) == counts
    b.run_cycle(MODEL, T0, token=mb.token(MODEL))  # the new owner writes as usual
    before.close()


def test_two_rollbacks_asked_at_once_on_two_replicas_move_the_alias_once(tmp_path, url):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    reg = serving_registry(version="2")
    slow_set = reg.set_alias

    def slow(name: str, alias: str, version: str) -> None:
        time.sleep(0.3)  # both requests are in flight together
        slow_set(name, alias, version)

    reg.set_alias = slow  # type: ignore[method-assign]
    a, ma = replica(tmp_path, url, reg, "a", lease_ttl=60.0)  # held through the drive on a loaded machine
    b, _ = replica(tmp_path, url, reg, "b")
    ma.tick([MODEL])  # `a` holds the model: only its API drives the rollback, under its lease
    outcomes: list[Any] = []
    barrier = threading.Barrier(2)

    def ask(v: Vigil) -> None:
        barrier.wait()
        outcomes.append(v.operator.rollback(RollbackAsk(v.config.model(MODEL), "1", "on-call", "api:x", None, T0)))

    threads = [threading.Thread(target=ask, args=(v,)) for v in (a, b)]
    [t.start() for t in threads]
    [t.join(timeout=30) for t in threads]
    statuses = sorted(str(o.status) for o in outcomes)
    assert statuses in (["done", "pending"], ["done", "noop"], ["pending", "pending"]), outcomes
    if statuses == ["pending", "pending"]:  # `b` recorded it first and `a` joined it: a's next cycle drives it
        assert reg.moves == []
        a.run_cycle(MODEL, T0 + 60, token=ma.token(MODEL))
    assert reg.moves == [(MODEL, "champion", "1")]
    done = [x for x in a.store.actions(model=MODEL) if x.status == "done"]
    assert len(done) == 1
    assert [e.action for e in a.store.audit_entries()].count("rollback.done") == 1


def test_vigil_serve_on_a_shared_store_moves_no_layer_of_a_rollback_it_is_asked_for(tmp_path, url):
    """`vigil serve` (the API, no cycles) holds no model's lease: it drove a rollback unfenced."""
    from monitor.startup import prepare

    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path, store={"url": url}), registry=reg)
    prepare(vigil, None, cycles=False)
    got = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "on-call", "api:x", None, T0))
    assert reg.moves == [] and str(got.status) == "pending" and "does not hold" in got.detail, got


def test_vigil_rollback_on_a_shared_store_moves_no_layer_itself(tmp_path, url):
    """The terminal's `vigil rollback` holds no model's lease either: it drove the rollback
    (and finished an earlier one of its own) unfenced, beside the lease holder's cycle."""
    from monitor.cli_rollback import _vigil
    from monitor.executors.build import alias_executor

    reg = serving_registry(version="2")
    vigil = _vigil(make_config(tmp_path, store={"url": url}))
    vigil._layers[MODEL] = [alias_executor(reg, "champion")]
    got = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "on-call", "cli:x", None, T0))
    assert reg.moves == [] and str(got.status) == "pending" and "does not hold" in got.detail, got
