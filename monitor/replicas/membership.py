"""One replica's membership in the group sharing a database, and the model leases it holds.

A replica heartbeats (its row in `replicas`), renews its leases, sweeps replicas that went
silent, and rebalances: the live replicas split the models by rendezvous hashing; a
replica releases models no longer assigned to it (so their new owner takes them at once
instead of waiting for expiry) and acquires the assigned models whose lease is free,
expired, or held by a replica that is no longer live. The database arbitrates and its
clock decides expiry (`monitor.store.leases`); the tokens it hands out fence every write
of a model's cycle (`monitor.replicas.fence`).

What a replica believes it owns (`owned()`) also ends on its own, by the monotonic clock,
one lease TTL after the renewal that last confirmed it was sent: that renewal ran no
earlier than it was sent, so the belief ends no later than the lease in the database and
a replica cut off from the database stops starting cycles before anyone can take over.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.failpoints import failpoint
from monitor.replicas.fence import Fence
from monitor.replicas.lease_pool import OwnPool, lease_db
from monitor.replicas.metrics import LeaseMetrics
from monitor.replicas.rendezvous import assign
from monitor.store import leases as sql
from monitor.store.repository import Store


@dataclass(frozen=True)
class LeaseTiming:
    """How often a replica heartbeats and rebalances, and how long a lease lasts (seconds).

    `for_interval(I)`: renew every I/3, leases and heartbeats last I. A replica killed at
    time k renewed last at or before k, so by k + I its leases have expired and it is no
    longer live; every survivor rebalances within I/3 after that. Its models are taken
    over by k + 4/3 I (plus one rebalance's own run time), which leaves 2/3 I for the new
    owner's first cycle inside the promise of two intervals; a healthy replica can miss
    one renewal without losing a lease.
    """

    renew_every: float
    lease_ttl: float

    def __post_init__(self) -> None:
        if not 0 < 2 * self.renew_every < self.lease_ttl:
            raise ValueError(f"lease_ttl ({self.lease_ttl} s) must exceed two renewals ({self.renew_every} s each), "
                             "or one slow renewal loses the leases of a healthy replica")

    @classmethod
    def for_interval(cls, interval: float) -> LeaseTiming:
        return cls(renew_every=interval / 3, lease_ttl=interval)

    @property
    def takeover_bound(self) -> float:
        """Worst case from a kill to the takeover of its models, rebalance run time aside."""
        return self.lease_ttl + self.renew_every


@dataclass(frozen=True)
class LeaseChange:
    """What one `tick` changed, for the scheduler: start cycles for `acquired`, stop `released` and `lost`."""

    owned: dict[str, int]
    acquired: dict[str, int]
    released: list[str]
    lost: list[str]
    live: list[str]


class Membership:
    """A replica's heartbeat, leases and rebalancing. `tick`, `heartbeat`, `rebalance` and
    `leave` are serialised (one scheduler job calls them); `owned`, `token` and `fence`
    may be used from any thread (cycles)."""

    def __init__(self, store: Store, timing: LeaseTiming, *, replica_id: str | None = None,
                 metrics: LeaseMetrics | None = None) -> None:
        self.store = lease_db(store)  # never queued behind the cycles for a connection (lease_pool.py)
        self.timing = timing
        self.host = socket.gethostname()
        self.replica_id = replica_id or f"{self.host}-{uuid.uuid4().hex[:12]}"
        self.fence = Fence(self.replica_id)
        self._metrics = metrics
        self._tick_lock = threading.Lock()
        # Never held across a database call: a cycle holding a lease row FOR SHARE may ask
        # for its token while the heartbeat waits for that row.
        self._lock = threading.Lock()
        self._owned: dict[str, tuple[int, float]] = {}  # model -> (token, monotonic deadline)
        self._live: list[str] = []

    # ------------------------------------------------------------ what we hold
    def owned(self) -> dict[str, int]:
        """Models this replica holds now -> their fencing tokens."""
        now = time.monotonic()
        with self._lock:
            return {m: tok for m, (tok, deadline) in self._owned.items() if deadline > now}

    def token(self, model: str) -> int | None:
        return self.owned().get(model)

    @property
    def live(self) -> list[str]:
        """The live replicas as the last rebalance saw them."""
        with self._lock:
            return list(self._live)

    # ------------------------------------------------------------ the periodic work
    def tick(self, models: Sequence[str]) -> LeaseChange:
        """Heartbeat, then rebalance `models`; call every `timing.renew_every` seconds."""
        with self._tick_lock:
            try:
                lost = self._heartbeat()
                failpoint("after_lease_renew")
                acquired, released = self._rebalance(models)
            except Exception:
                if self._metrics:
                    self._metrics.heartbeat_errors.inc()
                    # What it still holds (leases lapse on their own): cut off from the
                    # database, it otherwise went on saying it owned models run elsewhere.
                    self._metrics.models_owned.set(len(self.owned()))
                raise
        owned = self.owned()
        if self._metrics:
            self._metrics.models_owned.set(len(owned))
            self._metrics.replicas_live.set(len(self.live))
        return LeaseChange(owned, acquired, released, lost, self.live)

    def heartbeat(self) -> None:
        """Record this replica as live, renew its leases, and sweep replicas gone silent."""
        with self._tick_lock:
            self._heartbeat()

    def retime(self, timing: LeaseTiming, *, renew: bool = False) -> None:
        """Use `timing` from now on (a reloaded interval). `renew`: renew every lease held now
        under it, before the caller lengthens the renewal period (else they lapse in between)."""
        with self._tick_lock:  # never between a tick's renewal and its belief of what it holds
            self.timing = timing
            if renew:
                self._heartbeat()

    def rebalance(self, models: Sequence[str]) -> dict[str, int]:
        """Release what is no longer assigned here, acquire what is and is free; returns `owned()`."""
        with self._tick_lock:
            self._rebalance(models)
        return self.owned()

    def leave(self) -> None:
        """Shutting down: release every lease and the replica row, so others take over at once (if that
        fails, the leases lapse on their own; the error is raised once the lease pool is closed)."""
        with self._tick_lock:
            with self._lock:
                self._owned.clear()
            try:
                with self.store.tx() as s:
                    sql.release_all(s, self.replica_id)
                    sql.remove_replica(s, self.replica_id)
            finally:  # a failed release still closes the heartbeat's own connection
                if isinstance(self.store, OwnPool):
                    self.store.close()

    # ------------------------------------------------------------ steps
    def _heartbeat(self) -> list[str]:
        sent = time.monotonic()
        with self.store.tx() as s:
            sql.upsert_replica(s, self.replica_id, self.host, os.getpid())
            # A row one of our cycles holds is waited for a little only: the next renewal is due soon.
            held = sql.renew(s, self.replica_id, self.timing.lease_ttl, busy_wait_s=self.timing.renew_every / 4)
        lost = self._keep(held, sent)
        with self.store.tx() as s:
            sql.expire_replicas(s, self.timing.lease_ttl)
        return lost

    def _keep(self, held: dict[str, tuple[int, float]], sent: float) -> list[str]:
        """Keep what the renewal confirmed, under the tokens it returned, each until `sent` plus
        what the database gave it (a lease it could not renew keeps what it had left); the
        rest is lost."""
        with self._lock:
            lost = sorted(m for m, (tok, _) in self._owned.items() if m not in held or held[m][0] != tok)
            # A lease in the database we did not know of is ours all the same: an
            # acquisition whose commit reached the database but whose answer did not.
            self._owned = {m: (tok, sent + valid_for) for m, (tok, valid_for) in held.items()}
        if lost and self._metrics:
            self._metrics.losses.inc(len(lost))
        return lost

    def _rebalance(self, models: Sequence[str]) -> tuple[dict[str, int], list[str]]:
        with self.store.tx() as s:
            live = sorted(set(sql.live_replicas(s, self.timing.lease_ttl)) | {self.replica_id})
        mine = {m for m, r in assign(models, live).items() if r == self.replica_id}
        held = self.owned()
        with self._lock:
            # Every model we might hold, lapsed ones too: a renewal that committed but
            # whose answer was lost leaves a lease the database still counts as ours.
            drop = sorted(m for m in self._owned if m not in mine)
            self._live = live
            for m in drop:  # forget before releasing: never believe we hold what another may take
                self._owned.pop(m, None)
        released: list[str] = []
        if drop:
            with self.store.tx() as s:
                released = sql.release(s, self.replica_id, drop)
        want = sorted(m for m in mine if m not in held)
        sent = time.monotonic()
        acquired: dict[str, int] = {}
        if want:
            with self.store.tx() as s:
                acquired = sql.acquire(s, self.replica_id, want, self.timing.lease_ttl, self.timing.lease_ttl)
        with self._lock:
            for m, tok in acquired.items():
                self._owned[m] = (tok, sent + self.timing.lease_ttl)
        if self._metrics:
            self._metrics.acquisitions.inc(len(acquired))
            self._metrics.releases.inc(len(released))
        return acquired, released
