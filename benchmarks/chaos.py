"""Chaos benchmark: two Vigil replicas on one PostgreSQL, against a real Prometheus, a real
`mlflow server` and the local Slack server, driven by a shared replay clock through a
scenario with deploy regressions, while faults are injected.

    python -m benchmarks.chaos                 # about 30 faults, under 15 minutes on 2 cores
    python -m benchmarks.chaos --quick         # 6 faults, about 3 minutes
    python -m benchmarks.chaos --faults 0      # the scenario alone: the counts' baseline

Faults (benchmarks/chaos_plan.py): kill -9 of a replica; kills at named fail points
(`VIGIL_FAILPOINTS`: after the alias move and after the rollback intent while a rollback is
due, after the Slack call, inside the cycle's transaction); a store table locked ACCESS
EXCLUSIVE; the registry stopped while a rollback is due; the clock jumped back 2 h. It
prints a row per fault and per model, then one line:

    lost_alerts=N duplicate_posts=N duplicate_rollbacks=N wrong_rollbacks=N takeover_s=X

and exits 0 only when the four counts are 0 (benchmarks/chaos_verdict.py says how each is
counted). Every server binds 127.0.0.1 and is stopped on exit, Ctrl-C included.
"""
from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks import chaos_plan, chaos_report
from benchmarks.chaos_faults import Ctx, FaultRecord, run_in_thread
from benchmarks.chaos_replicas import Pacer, Replica
from benchmarks.chaos_scenario import ALIAS, DAY, H, Scenario, plan_models
from benchmarks.chaos_takeover import read_cycles, takeover, wait_logged
from benchmarks.chaos_verdict import judge, read_posts, read_store
from benchmarks.chaos_world import TOKEN, TOKEN_ENV, World, open_world

log = logging.getLogger("vigil.chaos")
SETTLE_STEPS = 8  # after the scenario: open rows drain, backoffs in replay time pass
WARM_TIMEOUT_S = 240.0  # first start: numba compiles the anomaly kernel once
RESERVE_S = 90.0  # of --max-minutes, kept for settling, stopping and counting


@dataclass(frozen=True)
class Options:
    faults: int
    regressions: int
    steady: int
    seed: int
    interval_s: float
    step_s: float
    max_minutes: float
    workdir: Path | None


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="6 faults, 2 regressions, about 3 minutes (for a test)")
    p.add_argument("--faults", type=int, help="faults to inject (default 30; --quick 6)")
    p.add_argument("--regressions", type=int, help="models with a deploy regression (default 6; --quick 2)")
    p.add_argument("--steady", type=int, default=None, help="models never deployed (default 1; --quick 0); one "
                                                             "more model always gets a harmless deploy")
    p.add_argument("--seed", type=int, default=1, help="seeds the fault schedule and the data (default 1)")
    p.add_argument("--interval", type=float, default=2.0, help="real seconds per cycle interval (default 2)")
    p.add_argument("--step", type=float, default=120.0, help="replay seconds per interval (default 120)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock bound (default 15; --quick 6)")
    p.add_argument("--workdir", type=Path, help="keep logs, config and data here (default: a temporary "
                                                "directory, removed)")
    a = p.parse_args(argv)
    quick = a.quick
    return Options(faults=a.faults if a.faults is not None else (6 if quick else 30),
                   regressions=a.regressions if a.regressions is not None else (2 if quick else 6),
                   steady=a.steady if a.steady is not None else (0 if quick else 1), seed=a.seed,
                   interval_s=a.interval, step_s=a.step,
                   max_minutes=a.max_minutes if a.max_minutes is not None else (6.0 if quick else 15.0),
                   workdir=a.workdir)


def _warm(replicas: dict[str, Replica], models: list[str], stop: threading.Event) -> float:
    """Wait (the clock held at its start) until every replica has started and every model
    has finished a cycle on some replica: the first start compiles numba kernels, which
    must not eat the scenario. (With leases a replica runs only the models it owns.)"""
    t0 = time.time()
    while time.time() - t0 < WARM_TIMEOUT_S and not stop.is_set():
        current = [r.current for r in replicas.values() if r.current is not None]
        started = all(wait_logged(i, "daemon started", 0) for i in current) and len(current) == len(replicas)
        if started and set(models) <= {c.model for c in read_cycles(current)}:
            return time.time() - t0
        dead = [r.name for r in replicas.values() if not r.alive()]
        if dead:
            raise RuntimeError(f"replica(s) {dead} exited during warm-up; see their logs")
        time.sleep(0.5)
    raise RuntimeError(f"replicas did not finish a cycle of every model within {WARM_TIMEOUT_S:.0f} s")


def _tick(pacer: Pacer, world: World, until_step: int, interval_s: float, hard_end: float,
          busy: threading.Thread | None = None) -> None:
    """Step the replay clock once per real interval up to `until_step` (and on while a
    fault is still running, within the data). The registry history up to the next step is
    written before the clock shows it: the cycles at a deploy's step must see the deploy
    (written after, a cycle racing the write would miss it, and a fault the step after
    could hide it until the KPI drop had begun without a deploy to blame)."""
    nxt = time.time()
    limit = until_step + 3 * chaos_plan.TAIL
    while pacer.step < until_step or (busy is not None and busy.is_alive() and pacer.step < limit):
        if time.time() > hard_end:
            log.warning("wall-clock budget reached at step %d of %d", pacer.step, until_step)
            return
        nxt += interval_s
        world.apply_registry(pacer.scenario_time(pacer.step + 1))
        time.sleep(max(0.0, nxt - time.time()))
        pacer.advance()


def _scenario(o: Options, plan: chaos_plan.Plan) -> Scenario:
    start = DAY + 6 * H
    models = plan_models(o.regressions, plan.deploy_steps, plan.harmless_step, o.steady, start, o.step_s)
    return Scenario(start, o.step_s, plan.steps, models)


def run(o: Options) -> int:
    t0 = time.time()
    hard_end = t0 + o.max_minutes * 60 - RESERVE_S
    plan = chaos_plan.plan_faults(o.faults, o.regressions, o.seed)
    scenario = _scenario(o, plan)
    print(f"chaos: {len(scenario.models)} models ({o.regressions} regressions), {len(plan.faults)} faults "
          f"{dict(sorted(plan.kinds.items()))}, {plan.steps} steps of {o.step_s:.0f} s replay every "
          f"{o.interval_s:g} s, seed {o.seed}", flush=True)
    records: list[FaultRecord] = []
    with ExitStack() as stack:
        workdir = o.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-chaos-")))
        world = open_world(stack, scenario, workdir, o.interval_s, SETTLE_STEPS * o.step_s, o.seed)
        print(f"chaos: world up in {time.time() - t0:.0f} s (postgres, prometheus, mlflow + proxy, slack)",
              flush=True)
        pacer = Pacer(workdir / "clock", scenario.start, scenario.step)
        replicas = {n: Replica(n, world.config_path, workdir / "clock", workdir, {TOKEN_ENV: TOKEN}) for n in "AB"}
        for r in replicas.values():
            stack.callback(r.close)
        stack.callback(pacer.halt)  # runs before the replicas stop: the fault thread lets go first
        for r in replicas.values():
            r.start()
        warm = _warm(replicas, [m.name for m in scenario.models], pacer.stop)
        print(f"chaos: replicas warm in {warm:.0f} s; scenario starts", flush=True)
        ctx = Ctx(world, replicas, pacer, random.Random(o.seed), o.interval_s, hard_end - 60)
        faults = run_in_thread(ctx, plan, records)
        _tick(pacer, world, plan.steps, o.interval_s, hard_end, faults)
        _tick(pacer, world, pacer.step + SETTLE_STEPS, o.interval_s, hard_end + RESERVE_S / 2)
        pacer.halt()
        faults.join(timeout=60)
        for r in replicas.values():
            r.close()
        return _count(o, world, scenario, replicas, records, t0)


def _count(o: Options, world: World, scenario: Scenario, replicas: dict[str, Replica],
           records: list[FaultRecord], t0: float) -> int:
    if not world.registry_up.is_set():
        world.start_registry()
    registry = world.direct_registry()
    finals = {m.name: registry.alias_version(m.name, ALIAS) for m in scenario.models}
    names = {world.slack.channel_id(c.lstrip("#")): c for c in scenario.channels}
    posts = read_posts(world.slack.messages(), names)
    verdict = judge(scenario.models, read_store(world.postgres.url), posts, world.proxy.moves(), finals)
    instances = [i for r in replicas.values() for i in r.instances]
    cycles = read_cycles(instances)
    end = time.time()
    takeovers = [takeover(k, cycles, o.interval_s, [m.name for m in scenario.models], end)
                 for rec in records for k in rec.kills]
    takeover_s, note = chaos_report.takeover_figure(takeovers, end)
    print("\nFaults\n" + chaos_report.fault_table(records, takeovers, scenario))
    print("\nModels\n" + chaos_report.model_table(verdict))
    ran = sum(1 for r in records if r.at is not None)
    reached = sum(1 for r in records if r.outcome in ("killed", "killed at point", "held", "down", "jumped"))
    print(f"\n{ran} of {len(records)} faults ran, {reached} took effect, "
          f"{sum(r.outcome == 'not reached' for r in records)} fail point(s) not reached; "
          f"{len(instances)} replica processes, {len(cycles)} cycles; {len(posts)} Slack messages, "
          f"{verdict.extra_incidents} extra incident(s) for one regression; wall time {time.time() - t0:.0f} s")
    for n in [*verdict.notes, *(note and [note] or [])]:
        print(f"  note: {n}")
    print(chaos_report.final_line(verdict, takeover_s), flush=True)
    return 0 if verdict.clean else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    # SIGTERM ends the run like Ctrl-C: through the ExitStack, so every server stops.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:
        print("chaos: interrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
