"""Which faults the chaos benchmark injects, and when: a seeded, bounded schedule.

The replay is laid out in rounds. A round starts with a deploy regression of its own
model and, while that model's rollback is due, one *anchored* fault aimed at it: a kill
at `after_alias_move` or at `rollback_after_intent` (both replicas armed a few steps
before the deploy: whichever does the rollback dies there), or the registry answering 502
for `OUTAGE_STEPS` cycles from the step after the deploy (its server stopped; a standby,
started beforehand on the same database, takes over, so the outage lasts as planned
whatever a server's start-up costs on this machine). The rest of the round holds *floating* faults: a kill -9, kills at
`after_notifier_call` (first in its round, so the regression's messages are due while it
waits) and `in_apply_tx`, a held store lock, a clock jumped back two hours. Faults never
overlap, and each kind appears before any repeats.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

KILL9 = "kill9"
FP_ALIAS = "failpoint:after_alias_move"
FP_INTENT = "failpoint:rollback_after_intent"
FP_NOTIFIER = "failpoint:after_notifier_call"
FP_APPLY = "failpoint:in_apply_tx"
STORE_LOCK = "store_lock"
OUTAGE = "registry_outage"
CLOCK_JUMP = "clock_jump"

ANCHORED = (FP_ALIAS, OUTAGE, FP_INTENT)  # first two always come first, in either order
FLOATING = (KILL9, FP_NOTIFIER, FP_APPLY, STORE_LOCK, CLOCK_JUMP)

# Steps each fault holds the stage for (a restart of a replica costs about 3 steps).
ARM_LEAD = 8  # steps before the deploy: both replicas restart armed, or a standby registry starts
ANCHORED_WAIT = 6  # ... and given until this many steps after the deploy to reach the point
KILL_PAUSE = 3  # a killed replica stays down this long: the other one must take over
FLOAT_WAIT = 4  # a floating fail point must be reached within this many steps
NOTIFIER_WAIT = 7  # messages are sparse: armed first in its round, it waits for the regression's resolve
LOCK_STEPS = 3
OUTAGE_STEPS = 4  # cycles the registry answers 502, from the step after the deploy
JUMP_STEPS = 3
STEPS = {KILL9: KILL_PAUSE + 3, FP_NOTIFIER: NOTIFIER_WAIT + 4, FP_APPLY: FLOAT_WAIT + 4, STORE_LOCK: LOCK_STEPS + 1,
         CLOCK_JUMP: JUMP_STEPS + 1, FP_ALIAS: ARM_LEAD + ANCHORED_WAIT + 6,
         FP_INTENT: ARM_LEAD + ANCHORED_WAIT + 6, OUTAGE: ARM_LEAD + 1 + OUTAGE_STEPS + 2}
MIN_ROUND = 14  # deploys this far apart, so an outage never swallows the next deploy
LEAD = 3
TAIL = 10  # after the last fault: incidents resolve, messages go out


@dataclass(frozen=True)
class PlannedFault:
    n: int
    kind: str
    step: int  # the clock step it starts at (or as soon after as the previous one ends)
    model_index: int | None = None  # anchored: which regression (in deploy order) it aims at
    deploy_step: int | None = None  # anchored: that regression's deploy


@dataclass(frozen=True)
class Plan:
    faults: list[PlannedFault]
    deploy_steps: list[int]  # one per regression
    harmless_step: int
    steps: int  # the scenario's clock steps, settling not included
    seed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def _kinds(pool: tuple[str, ...], n: int, rng: random.Random, first: tuple[str, ...] = ()) -> list[str]:
    """`n` kinds from `pool`: every kind once (those in `first` before the others) before any repeats."""
    out: list[str] = []
    while len(out) < n:
        head = [k for k in first if k in pool] if not out else []
        rest = [k for k in pool if k not in head]
        rng.shuffle(head)
        rng.shuffle(rest)
        out += head + rest
    return out[:n]


def _anchored(kind: str, n: int, start: int, index: int) -> tuple[PlannedFault, int, int]:
    """(the fault, its model's deploy step, the step the fault should be over by). Every
    anchored fault starts `ARM_LEAD` steps before its deploy: a fail point arms the
    replicas then, an outage starts its standby server."""
    deploy = start + ARM_LEAD
    return PlannedFault(n, kind, start, index, deploy), deploy, start + STEPS[kind]


def plan_faults(n_faults: int, n_regressions: int, seed: int) -> Plan:
    """The whole schedule; the same seed gives the same plan."""
    rng = random.Random(seed)
    n_anchored = min(n_faults, n_regressions)
    anchored = _kinds(ANCHORED, n_anchored, rng, first=(FP_ALIAS, OUTAGE))
    floating = _kinds(FLOATING, n_faults - n_anchored, rng, first=(KILL9,))
    rounds = max(n_regressions, 1)
    per_round = [len(floating[i::rounds]) for i in range(rounds)]
    faults: list[PlannedFault] = []
    deploys: list[int] = []
    step, fi = LEAD, 0
    for r in range(rounds):
        start = step
        if r < n_anchored:
            fault, deploy, step = _anchored(anchored[r], len(faults) + 1, start, r)
            faults.append(fault)
            deploys.append(deploy)
            step += 1
        elif r < n_regressions:
            deploys.append(start)
        # A kill after the Slack call needs a message due: the round's regression resolving is one.
        mine = sorted(floating[fi:fi + per_round[r]], key=lambda k: k != FP_NOTIFIER)
        fi += per_round[r]
        for kind in mine:
            faults.append(PlannedFault(len(faults) + 1, kind, step))
            step += STEPS[kind] + 1
        step = max(step, start + MIN_ROUND)
    counts: dict[str, int] = {}
    for f in faults:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return Plan(faults, deploys, LEAD + 1, step + TAIL, seed, counts)
