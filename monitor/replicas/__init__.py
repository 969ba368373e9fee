"""Several replicas on one database: membership and model leases, fencing of cycle writes,
and the one-daemon guard for SQLite.

How a daemon uses it. On PostgreSQL: one `Membership(store, LeaseTiming.for_interval(I))`,
its `tick(models)` every `timing.renew_every` seconds on a job of its own (never behind a
cycle); cycles run only for `owned()`, each with the token it started with, and every
transaction of a cycle begins with `membership.fence.check(session, model, token)`; on
shutdown, after the cycles finished, `leave()`. On SQLite: `single_daemon_lock(url)` held
for the daemon's life, `NoFence()` for the cycle, no membership.
"""
from __future__ import annotations

from monitor.replicas.fence import Fence, FenceCheck, LeaseLost, NoFence
from monitor.replicas.membership import LeaseChange, LeaseTiming, Membership
from monitor.replicas.metrics import LeaseMetrics
from monitor.replicas.rendezvous import assign, owner_of
from monitor.replicas.single_daemon import AnotherDaemonRunning, DaemonLock, single_daemon_lock

__all__ = ["AnotherDaemonRunning", "DaemonLock", "Fence", "FenceCheck", "LeaseChange", "LeaseLost", "LeaseMetrics",
           "LeaseTiming", "Membership", "NoFence", "assign", "owner_of", "single_daemon_lock"]
