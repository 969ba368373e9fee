"""Carrying out the planned faults (benchmarks/chaos_plan.py), one at a time, on a thread of
their own while the main thread steps the replay clock.

Every fault ends with both replicas running again (and started: their log says so), so
the next fault never finds the stage short of a replica. A kill at a fail point counts
only if the armed process died by SIGKILL; one that is never reached (the point is not
wired yet, or the other replica did the work) is reported as such, never as survived.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from benchmarks import chaos_plan as P
from benchmarks.chaos_replicas import Instance, Pacer, Replica
from benchmarks.chaos_takeover import Kill, owned_models, wait_logged
from benchmarks.chaos_world import World

log = logging.getLogger("vigil.chaos")
START_TIMEOUT_S = 60.0
JUMP_S = -2 * 3600.0
LOCK_TABLES = ("outbox", "incidents", "model_state", "rollback_intents")


@dataclass
class FaultRecord:
    n: int
    kind: str
    at: float | None = None  # replay time it began (None: never ran)
    target: str = "-"
    outcome: str = "skipped"
    notes: str = ""
    kills: list[Kill] = field(default_factory=list)
    model_index: int | None = None


@dataclass
class Ctx:
    world: World
    replicas: dict[str, Replica]
    pacer: Pacer
    rng: random.Random
    interval_s: float
    deadline: float  # wall clock: no fault starts after this

    def wait_steps(self, n: int) -> bool:
        return self.pacer.wait_step(self.pacer.step + n)

    def pick(self, model: str | None = None) -> str:
        """The replica that owns `model` when the store says (leases), else a seeded pick."""
        if model is not None:
            for name, r in sorted(self.replicas.items()):
                inst = r.current
                owned = owned_models(self.world.postgres.conninfo, inst.pid) if inst else None
                if owned and model in owned:
                    return name
        return self.rng.choice(sorted(self.replicas))

    def restart(self, r: Replica, failpoints: str | None = None) -> Instance:
        inst = r.start(failpoints)
        if not wait_logged(inst, "daemon started", time.time() + START_TIMEOUT_S):
            log.warning("replica %s did not log 'daemon started' within %.0f s", inst.label, START_TIMEOUT_S)
        return inst


def _kill_record(ctx: Ctx, inst: Instance) -> Kill:
    return Kill(inst.label, inst.pid, inst.ended_at or time.time(), owned_models(ctx.world.postgres.conninfo,
                                                                                inst.pid))


def kill9(ctx: Ctx, rec: FaultRecord, pf: P.PlannedFault) -> None:
    name = ctx.pick()
    r = ctx.replicas[name]
    rec.target = name
    owned = owned_models(ctx.world.postgres.conninfo, r.current.pid) if r.current else None
    inst = r.kill9()
    if inst is None:
        rec.outcome, rec.notes = "not run", f"replica {name} was not running"
        return
    rec.kills.append(Kill(inst.label, inst.pid, inst.ended_at or time.time(), owned))
    ctx.wait_steps(P.KILL_PAUSE)
    new = ctx.restart(r)
    rec.outcome = "killed"
    rec.notes = f"{inst.label} down {new.started_at - (inst.ended_at or new.started_at):.0f} s, then {new.label}"


def failpoint(ctx: Ctx, rec: FaultRecord, pf: P.PlannedFault) -> None:
    """Restart replica(s) armed to kill themselves at the point; both replicas when the
    point is a rollback's (whichever does it dies there: who owns a model after a
    restart cannot be known ahead); then every armed process is restarted clean."""
    point = pf.kind.split(":", 1)[1]
    model = ctx.world.scenario.models[pf.model_index].name if pf.model_index is not None else None
    names = sorted(ctx.replicas) if model else [ctx.pick()]
    rec.target = "+".join(names) + (f" ({model})" if model else "")
    armed = []
    for name in names:  # one after the other: the other replica runs meanwhile
        ctx.replicas[name].terminate()
        armed.append(ctx.restart(ctx.replicas[name], f"{point}=kill@1"))
    steps = (pf.deploy_step + P.ANCHORED_WAIT - ctx.pacer.step) if pf.deploy_step is not None else \
        (P.NOTIFIER_WAIT if pf.kind == P.FP_NOTIFIER else P.FLOAT_WAIT)
    dead = _wait_any([ctx.replicas[n] for n in names], time.time() + max(steps, 1) * ctx.interval_s, ctx)
    killed = [i for i in dead if i.returncode == -9]
    rec.kills += [_kill_record(ctx, i) for i in killed]
    if killed:
        rec.outcome = "killed at point"
        rec.notes = f"{', '.join(i.label for i in killed)} died at {point}"
    elif dead:
        rec.outcome = f"exited {dead[0].returncode}"
        rec.notes = f"{dead[0].label} exited before {point} (see its log)"
    else:
        rec.outcome = "not reached"
        rec.notes = f"{', '.join(i.label for i in armed)} ran {steps} steps without reaching {point}"
    if killed:
        ctx.wait_steps(1)  # a moment with the dead replica down: the other takes over
    fresh = []
    for name in sorted(names, key=lambda n: ctx.replicas[n].alive()):  # the dead first: never both down
        r = ctx.replicas[name]
        r.terminate()
        fresh.append(ctx.restart(r).label)
    rec.notes += f"; restarted clean as {', '.join(fresh)}"


def _wait_any(replicas: list[Replica], deadline: float, ctx: Ctx) -> list[Instance]:
    """Poll until one of `replicas` ends by itself (then one more poll for the others) or the deadline."""
    while time.time() < deadline and not ctx.pacer.stop.is_set():
        dead = [i for r in replicas if (i := r.poll_exit("fail point")) is not None]
        if dead:
            time.sleep(0.5)  # two replicas racing to one rollback may both reach the point
            return dead + [i for r in replicas if (i := r.poll_exit("fail point")) is not None]
        time.sleep(0.1)
    return []


def store_lock(ctx: Ctx, rec: FaultRecord, pf: P.PlannedFault) -> None:
    import psycopg
    from psycopg import sql

    table = ctx.rng.choice(LOCK_TABLES)
    hold = P.LOCK_STEPS * ctx.interval_s
    rec.target = f"table {table}"
    try:
        with psycopg.connect(ctx.world.postgres.conninfo, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '10s'")
            waited = time.time()
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
            got = time.time()
            ctx.pacer.stop.wait(hold)
            conn.rollback()
        rec.outcome = "held"
        rec.notes = f"ACCESS EXCLUSIVE for {time.time() - got:.1f} s (waited {got - waited:.1f} s to get it)"
    except psycopg.Error as e:
        rec.outcome, rec.notes = "not held", f"{type(e).__name__}: {str(e).strip()[:120]}"


def registry_outage(ctx: Ctx, rec: FaultRecord, pf: P.PlannedFault) -> None:
    model = ctx.world.scenario.models[pf.model_index].name if pf.model_index is not None else None
    rec.target = "mlflow server" + (f" ({model} rolling back)" if model else "")
    ctx.world.prepare_standby()
    if pf.deploy_step is not None:
        ctx.pacer.wait_step(pf.deploy_step + 1)  # the deploy is seen; its rollback is due
    rec.at = ctx.pacer.now()
    down = time.time()
    ctx.world.stop_registry()
    ctx.wait_steps(P.OUTAGE_STEPS)
    ctx.world.start_registry()
    rec.outcome = "down"
    rec.notes = (f"server stopped, 502 for {time.time() - down:.1f} s ({P.OUTAGE_STEPS} steps), "
                 "then a fresh server on the same database")


def clock_jump(ctx: Ctx, rec: FaultRecord, pf: P.PlannedFault) -> None:
    rec.target = "clock file"
    ctx.pacer.shift(JUMP_S)
    ctx.wait_steps(P.JUMP_STEPS)
    ctx.pacer.shift(0.0)
    rec.outcome = "jumped"
    rec.notes = f"back {-JUMP_S / 3600:.0f} h for {P.JUMP_STEPS} steps, then forward again"


RUNNERS = {P.KILL9: kill9, P.FP_ALIAS: failpoint, P.FP_INTENT: failpoint, P.FP_NOTIFIER: failpoint,
           P.FP_APPLY: failpoint, P.STORE_LOCK: store_lock, P.OUTAGE: registry_outage, P.CLOCK_JUMP: clock_jump}


def run_faults(ctx: Ctx, plan: P.Plan, records: list[FaultRecord]) -> None:
    """Carry out the plan in order; `records` fills as it goes (the caller reads it even
    after an interruption)."""
    for pf in plan.faults:
        rec = FaultRecord(pf.n, pf.kind, model_index=pf.model_index)
        records.append(rec)
        if not ctx.pacer.wait_step(pf.step):
            rec.notes = "run stopped"
            continue
        if time.time() > ctx.deadline:
            rec.notes = "time budget (--max-minutes) spent"
            continue
        rec.at = ctx.pacer.now()
        try:
            RUNNERS[pf.kind](ctx, rec, pf)
        except Exception as e:  # the fault harness broke, not Vigil: say so, keep going
            if ctx.pacer.stop.is_set():
                rec.outcome, rec.notes = "interrupted", "the run was stopping"
                return
            log.exception("fault %d (%s) failed", pf.n, pf.kind)
            rec.outcome, rec.notes = "harness error", f"{type(e).__name__}: {e}"
            _revive(ctx)
    if not ctx.pacer.stop.is_set():
        _revive(ctx)


def _revive(ctx: Ctx) -> None:
    """Both replicas running again, whatever a fault left."""
    for r in ctx.replicas.values():
        if not r.alive():
            r.poll_exit()
            ctx.restart(r)
    if not ctx.world.registry_up.is_set():
        ctx.world.start_registry()


def run_in_thread(ctx: Ctx, plan: P.Plan, records: list[FaultRecord]) -> threading.Thread:
    t = threading.Thread(target=run_faults, args=(ctx, plan, records), name="chaos-faults", daemon=True)
    t.start()
    return t
