"""Which models this daemon may cycle, and the fencing token each cycle carries.

- SQLite: one daemon per store file. `single_daemon_lock` is held for the daemon's life
  (a second `vigil run` on the same file refuses to start); it owns every model, and its
  cycles need no fencing.
- PostgreSQL: replicas lease models (monitor/replicas). A tick (heartbeat + rebalance)
  runs on its own scheduler job every `renew_every`; a cycle runs only for a model this
  replica holds, under the token it held when the cycle began; a model just taken over
  gets its first cycle at once, so a killed replica's models run again within
  `lease_ttl + renew_every` (4/3 of an interval by default).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from monitor.replicas import DaemonLock, LeaseMetrics, LeaseTiming, Membership, single_daemon_lock
from monitor.store.repository import Store

log = logging.getLogger("vigil.ownership")


class Ownership:
    """One daemon alone on its store: every model is its own."""

    renew_every: float | None = None
    replica_id: str | None = None  # a replica's id among others (whose leases are its own)

    def __init__(self, lock: DaemonLock | None = None) -> None:
        self._lock = lock

    def owns(self, model: str) -> bool:
        return True

    def token(self, model: str) -> int | None:
        return None

    @property
    def fence(self) -> object | None:
        return None

    def tick(self, models: Sequence[str]) -> list[str]:
        """Models newly taken over (none when alone)."""
        return []

    def heartbeat(self) -> None:
        """Renew what is held, taking nothing new (while stopping; nothing to renew when alone)."""

    def retime(self, interval: float, reschedule: Callable[[float], None]) -> None:
        """A reloaded `schedule.interval` (nothing to retime when alone)."""

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()


class LeasedOwnership(Ownership):
    """A replica among others on one PostgreSQL."""

    def __init__(self, membership: Membership, forget: Callable[[str], None] | None = None) -> None:
        """`forget(model)` runs for each model this replica no longer holds (released or
        lost): the daemon drops the model's gauges from its /metrics there."""
        super().__init__()
        self.membership = membership
        self.renew_every = membership.timing.renew_every
        self.replica_id = membership.replica_id
        self._forget = forget

    def owns(self, model: str) -> bool:
        return self.membership.token(model) is not None

    def token(self, model: str) -> int | None:
        return self.membership.token(model)

    @property
    def fence(self) -> object | None:
        return self.membership.fence

    def tick(self, models: Sequence[str]) -> list[str]:
        change = self.membership.tick(models)
        if change.acquired or change.released or change.lost:
            log.info("model ownership changed", extra={
                "replica": self.membership.replica_id, "acquired": sorted(change.acquired),
                "released": sorted(change.released), "lost": sorted(change.lost), "owned": len(change.owned),
                "live_replicas": len(change.live)})
        if self._forget is not None:
            for model in change.released + change.lost:
                if model not in change.owned:  # a lost lease found again in the renewal is still ours
                    self._forget(model)
        return sorted(change.acquired)

    def heartbeat(self) -> None:
        self.membership.heartbeat()

    def retime(self, interval: float, reschedule: Callable[[float], None]) -> None:
        """Leases last one new interval and are renewed every third of one, as at start;
        `reschedule(period)` retimes the heartbeat job. No lease may ever be shorter than a
        renewal period in flight: a shorter TTL only once renewals already come at the new,
        shorter period; a longer period only once every lease held was renewed for the
        new, longer TTL (if that renewal fails the period stays short: safe, and raised)."""
        new, old = LeaseTiming.for_interval(interval), self.membership.timing
        if new == old and self.renew_every == new.renew_every:  # (a failed retime left the period short: retried)
            return
        if new.lease_ttl < old.lease_ttl:
            reschedule(new.renew_every)
            self.renew_every = new.renew_every
            self.membership.retime(new)
        else:
            self.membership.retime(new, renew=True)
            reschedule(new.renew_every)
            self.renew_every = new.renew_every
        log.info("lease timing changed", extra={"replica": self.membership.replica_id, "interval_s": interval,
                                                "lease_ttl_s": new.lease_ttl, "renew_every_s": new.renew_every})

    def close(self) -> None:
        try:
            self.membership.leave()  # the others take the models over now, not at expiry
        except Exception:  # the leases expire on their own
            log.exception("could not release the leases on stop")


class LeaseKeeper:
    """While stopping, the leases of the models whose cycles are still running are renewed
    (no rebalance: nothing new is taken). Without it a sweep longer than the lease's
    life after the last heartbeat loses its leases mid-way and the rest of its cycles are
    refused by the fence: a rolling restart would drop a sweep's worth of work."""

    def __init__(self, owner: Ownership) -> None:
        self.owner = owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vigil-lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        if self.owner.renew_every is not None:
            self._thread.start()
        return self

    def _loop(self) -> None:
        assert self.owner.renew_every is not None
        while not self._stop.wait(self.owner.renew_every):
            try:
                self.owner.heartbeat()
            except Exception:  # the leases run out on their own; the fence keeps the writes safe
                log.exception("lease heartbeat while stopping failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def ownership_for(store: Store, interval: float, metrics: LeaseMetrics | None = None,
                  forget: Callable[[str], None] | None = None) -> Ownership:
    """SQLite: the single-daemon lock (raises `AnotherDaemonRunning`); PostgreSQL: leases,
    calling `forget(model)` for each model this replica stops holding."""
    if store.url.startswith("sqlite"):
        return Ownership(single_daemon_lock(store.url))
    membership = Membership(store, LeaseTiming.for_interval(interval), metrics=metrics)
    log.info("replica joining", extra={"replica": membership.replica_id, "interval_s": interval})
    return LeasedOwnership(membership, forget)
