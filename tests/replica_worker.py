"""A replica in its own process, for the multi-process tests:
python -m tests.replica_worker URL N INTERVAL [IDLE_TX_TIMEOUT].

Every `renew_every` it ticks over models m000..m(N-1), then makes one fenced write per model
it believed it held *before* the tick (as a cycle that started before a pause would): in
one transaction it checks the fence and appends (model, owner, token) to `fenced_writes`.
A refused write prints `{"lost": model, "token": t}`; each tick prints `{"owned": n}`.

IDLE_TX_TIMEOUT replaces `leases.IDLE_TX_TIMEOUT_S` (120 s), the time after which PostgreSQL
ends a transaction of a replica paused inside it, with one at the test's time scale. A write
or tick whose transaction it ended prints `{"ended": model}` / `{"tick_failed": error}`,
and the replica goes on, as the daemon's cycles and lease job do.
"""
from __future__ import annotations

import json
import signal
import sys
import time

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from monitor.replicas import LeaseLost, LeaseTiming, Membership
from monitor.store import leases
from monitor.store.repository import Store


def main(url: str, n_models: int, interval: float, idle_tx_timeout: float | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if idle_tx_timeout is not None:
        leases.IDLE_TX_TIMEOUT_S = idle_tx_timeout  # read by each new connection of the Store
    store = Store(url)
    m = Membership(store, LeaseTiming.for_interval(interval))
    models = [f"m{i:03d}" for i in range(n_models)]
    print(json.dumps({"replica": m.replica_id}), flush=True)
    held: dict[str, int] = {}
    next_tick = time.monotonic()
    while True:
        next_tick += m.timing.renew_every  # fixed rate, as the daemon's interval job runs
        try:
            m.tick(models)
        except DBAPIError as e:  # e.g. its transaction ended while paused: the next tick starts anew
            print(json.dumps({"tick_failed": f"{type(e).__name__}: {e}"[:300]}), flush=True)
        for model, token in held.items():
            try:
                with store.tx() as s:
                    m.fence.check(s, model, token)
                    s.execute(text("insert into fenced_writes (model, owner, token) values (:m, :o, :t)"),
                              {"m": model, "o": m.replica_id, "t": token})
            except LeaseLost:
                print(json.dumps({"lost": model, "token": token}), flush=True)
            except DBAPIError as e:  # paused inside it past IDLE_TX_TIMEOUT: PostgreSQL ended it, nothing written
                print(json.dumps({"ended": model, "token": token, "error": f"{type(e).__name__}: {e}"[:300]}),
                      flush=True)
        held = m.owned()
        print(json.dumps({"owned": len(held)}), flush=True)
        time.sleep(max(0.0, next_tick - time.monotonic()))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else None)
