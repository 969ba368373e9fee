"""Fail points: named places where tests and the chaos benchmark make Vigil crash.

Enabled only through the environment variable `VIGIL_FAILPOINTS`, which production
never sets; with it unset, `failpoint()` is one dictionary lookup. The value is a
comma-separated list of `name=action`, where action is

- `kill`       SIGKILL this process (a crash at exactly this line: nothing runs after it),
- `raise`      raise `FailPointError` (a crash the caller's error handling sees),
- `sleep:<s>`  sleep that many seconds (a pause: a GC stall, a held lock, a slow disk),

optionally followed by `@N`: act on the N-th time the point is reached (1-based) in this
process, e.g. `VIGIL_FAILPOINTS="after_alias_move=kill@2,after_notifier_call=sleep:5"`.

The names, one per place that matters for exactly-once behaviour, are in `POINTS`; an
unknown name in the variable is an error, so a typo cannot make a chaos run pass.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

ENV = "VIGIL_FAILPOINTS"

POINTS = {
    "rollback_after_intent": "the rollback intent is recorded, nothing has moved yet",
    "before_layer_move": "a rollback's layers before this one are moved and recorded, this one not yet read",
    "after_alias_move": "the registry alias moved, the outcome not yet recorded",
    "before_abandon": "a pending rollback found no longer allowed (or too old), its abandonment not yet recorded",
    "after_serving_change": "the serving layer was changed, not yet verified or recorded",
    "in_apply_tx": "inside the cycle's write transaction, before commit",
    "after_apply_commit": "the cycle's write committed, actions not yet run",
    "before_notifier_call": "an outbox row is claimed, the notifier not yet called",
    "after_notifier_call": "the notifier delivered, the outbox row not yet marked",
    "after_lease_renew": "a replica renewed its leases",
    "sweep_worker_chunk": "a sweep worker process took a chunk of models, no cycle of it run yet",
}


class FailPointError(RuntimeError):
    """Raised by a fail point set to `raise`."""


_hits: Counter[str] = Counter()
_lock = threading.Lock()


def parse(spec: str) -> dict[str, tuple[str, int]]:
    """`name=action[@N],...` -> {name: (action, nth)}; nth 0 means every time."""
    out: dict[str, tuple[str, int]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, action = part.partition("=")
        if not sep or name not in POINTS:
            raise ValueError(f"{ENV}: {part!r}: expected name=action with name one of {sorted(POINTS)}")
        action, _, nth = action.partition("@")
        if not (action in ("kill", "raise") or (action.startswith("sleep:") and _is_number(action[6:]))):
            raise ValueError(f"{ENV}: {part!r}: action must be kill, raise or sleep:<seconds>")
        if nth and not nth.isdigit():
            raise ValueError(f"{ENV}: {part!r}: @N must be a positive integer")
        out[name] = (action, int(nth or 0))
    return out


def _is_number(s: str) -> bool:
    try:
        return float(s) >= 0
    except ValueError:
        return False


def failpoint(name: str) -> None:
    """Do what `VIGIL_FAILPOINTS` says for `name`, if anything."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    assert name in POINTS, name
    rule = parse(spec).get(name)
    if rule is None:
        return
    action, nth = rule
    with _lock:
        _hits[name] += 1
        hit = _hits[name]
    if nth and hit != nth:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # SIGKILL is asynchronous: never run the next line
    elif action == "raise":
        raise FailPointError(f"fail point {name}")
    else:
        time.sleep(float(action[6:]))


def reset() -> None:
    """Forget hit counts (tests that set `@N` in-process)."""
    with _lock:
        _hits.clear()
