"""`vigil rollback MODEL`: the API's rollback from a terminal, guarded, audited and announced.

It goes through the same durable intent as `POST /v1/models/{name}/rollback` and tells the
same people: the incident it answers (`--incident`, else the model's newest open one, as
the API picks) shows the rollback in its Slack thread and to its receivers, and the
rollback's own message goes out. Those messages are outbox rows written in the rollback's
outcome transaction, so a crash after it loses none and a retry (a no-op, or the intent
still in flight) writes none again; the command then sends them through the outbox's
claims (what it cannot send, the daemon's sender does).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import TYPE_CHECKING

from alerts.rollback import FORCE_NEEDED, ActionStatus
from monitor.cli_args import id_arg, reason_arg, version_arg
from monitor.config import ConfigError, load_config

if TYPE_CHECKING:
    from typing import TypeAlias

    from monitor.config import ModelConfig, VigilConfig
    from monitor.vigil import Vigil

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

log = logging.getLogger("vigil.cli")


def cmd_rollback(args: argparse.Namespace) -> int:
    from monitor.audit.wiring import refuse_unkeyed
    from monitor.cycle.rollback_ask import RollbackAsk, missing_version

    cancelling = args.model == "cancel" and args.cancel_model is not None
    if args.cancel_model is not None and not cancelling:
        print(f"vigil rollback: one model, got {args.model!r} and {args.cancel_model!r} (to cancel: vigil rollback "
              "cancel MODEL)", file=sys.stderr)
        return 64
    if not cancelling and args.reason is None:  # a rollback is audited with its why; a cancel may give one
        print("vigil rollback: the following arguments are required: --reason", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    name = args.cancel_model if cancelling else args.model
    try:
        m = cfg.model(name)
    except KeyError:
        print(f"unknown model {name!r}; configured: {', '.join(x.name for x in cfg.models)}", file=sys.stderr)
        return 64
    vigil = _vigil(cfg)
    refuse_unkeyed(vigil.store)  # an unkeyed entry in a keyed log reads as tampering for ever
    if cancelling:
        return _cancel(vigil, m, f"cli:{args.actor}", args.reason or "cancelled from the command line")
    incident_id, why = _incident(vigil, m.name, args.incident)
    if why:
        print(f"vigil rollback: --incident {args.incident}: {why}", file=sys.stderr)
        return 64
    now = time.time()
    if not args.dry_run:  # a dry run moves nothing, a pending rollback's layers included
        _finish_earlier(vigil, m, now)
    choice = vigil.operator.choose_target(m, now, asked=args.to_version, force=args.force, force_reason=args.reason)
    if choice.version is None:
        # A blamed version asked for by name: the flag to name is --force (the user did pass
        # --to-version; force=true is the API's field).
        hint = ("pass --force to move to it anyway (audited with the --reason)" if args.to_version
                else "pass --to-version (and --force for a blamed version)")
        print(f"{choice.reason.removesuffix('; ' + FORCE_NEEDED)}: {hint}", file=sys.stderr)
        return 64
    missing = missing_version(vigil.registry, m.registry, choice.version)
    if missing:  # as the API's 422: nothing recorded for a version the registry does not have
        print(f"vigil rollback: --to-version {choice.version}: {missing}", file=sys.stderr)
        return 64
    outcome = vigil.operator.rollback(RollbackAsk(m, choice.version, args.reason, f"cli:{args.actor}", incident_id,
                                                  now, dry_run=args.dry_run, forced=choice.forced,
                                                  stay=choice.stay))
    _announce(vigil, m.name, incident_id)
    detail = choice.said(outcome.detail, outcome.status)
    print(json.dumps({**outcome.__dict__, "detail": detail, "incident_id": incident_id}))
    return 0 if outcome.status in (ActionStatus.DONE, ActionStatus.DRY_RUN, ActionStatus.NOOP) else 1


def _vigil(cfg: VigilConfig) -> Vigil:
    """A Vigil with the daemon's notifiers: the rollback's messages go where the daemon's go,
    also when the daemon's Slack token is in its environment and not in this terminal's."""
    from monitor.notifiers import terminal_notifiers
    from monitor.startup import hold_no_lease
    from monitor.store.repository import Store
    from monitor.vigil import Vigil

    store = Store(cfg.store.url)
    daemon_chat = store.outbox.newest_notifier(("slack", "sink"))
    vigil = Vigil(cfg, store=store, notifiers=terminal_notifiers(cfg, daemon_chat))
    # Beside replicas it records, the model's lease holder moves the layers; beside a running
    # daemon on SQLite it records, the daemon moves them; alone it moves them holding the store.
    hold_no_lease(vigil, role="a `vigil rollback` moving layers")
    return vigil


def _finish_earlier(vigil: Vigil, m: ModelConfig, now: float) -> None:
    """Finish what an earlier `vigil rollback` of the model left pending (killed after the
    alias moved), as a cycle would: verified, not moved again, announced once. Else the
    retry only answered "still in flight", for ever without a daemon cycle, the reason to
    use a terminal. Only a terminal's own, and only with layers this terminal can reach
    (its kubeconfig, a webhook's secret): a daemon's automatic rollback stays the daemon's,
    which one failing here (its layers not configured on this machine) would end."""
    from functools import partial

    from monitor.cycle.model_locks import CycleRunning
    from monitor.cycle.rollback_ask import ROLLBACK
    from monitor.cycle.rollback_pending import drive_pending
    from monitor.executors.base import ExecutorError
    from monitor.executors.guarded import preflight
    from monitor.store.intents import open_intents

    with vigil.store.tx() as s:
        ids = [i.id for i in open_intents(s, m.name) if i.actor.startswith("cli:")]
    try:
        if ids:
            preflight(vigil.rollbacks.layers_for(ROLLBACK, m))
        for intent_id in ids:  # abandoned past policy.rollback.pending_ttl, as at start-up; only where it may write
            vigil.rollbacks.lease(m.name, partial(drive_pending, vigil.rollbacks, vigil.config, intent_id, m, now))
    except ExecutorError as e:  # the ask then says what is still in flight; the daemon finishes it
        log.warning("could not finish the pending rollback here", extra={"model": m.name, "error": e.detail})
    except CycleRunning as e:  # the store held: by a daemon (its next cycle finishes it), or by another process
        log.info("the pending rollback is not finished here", extra={"model": m.name, "detail": e.who})


def _cancel(vigil: Vigil, m: ModelConfig, actor: str, reason: str) -> int:
    """`vigil rollback cancel MODEL`: as the API's cancel (monitor/cycle/rollback_cancel.py); 0 when
    cancelled or done already (nothing moved back), 1 when nothing was cancelled (the detail says why)."""
    from monitor.cycle.rollback_cancel import CANCELLED, DONE, cancel

    got = cancel(vigil.rollbacks, m, actor, reason, time.time())
    _announce(vigil, m.name, got.incident_id)
    print(json.dumps({"model": m.name, **got.__dict__}))
    return 0 if got.status in (CANCELLED, DONE) else 1


def _incident(vigil: Vigil, model: str, asked: int | None) -> tuple[int | None, str]:
    """The incident the rollback answers, or why the one asked for cannot be: by default
    the model's newest open incident (None when it has none), as the API chooses."""
    if asked is None:
        return vigil.operator.open_incident_id(model), ""
    row = vigil.store.incident(asked)
    if row is None or row.model != model:
        return None, f"no incident {asked} of {model}"
    return asked, ""


def _announce(vigil: Vigil, model: str, incident_id: int | None) -> None:
    """Send what the rollback wrote to the outbox now, through its claims (a daemon sending
    at the same time sends each message once): its own messages only, not a backlog that
    would hold the terminal for minutes. Messages of a notifier this terminal does not have
    are left to the daemon, untouched; a failure leaves them all for the daemon."""
    keys = [f"rollback:{model}", *([f"incident:{incident_id}"] if incident_id is not None else [])]
    try:
        vigil.sender.deliver_due(time.time(), database_clock=True, only_own=True, keys=keys)
    except Exception as e:  # the rollback happened; its messages wait in the outbox for the daemon
        log.warning("the rollback's messages wait in the outbox for the daemon's sender",
                    extra={"model": model, "error": f"{type(e).__name__}: {e}"})


def add_rollback(sub: _Subparsers) -> None:
    summary = "move a model's alias back (audited, and announced on the model's open incident)"
    rb = sub.add_parser("rollback", help=summary, description=summary)
    rb.add_argument("model", help="the model's name in vigil.yaml (or `cancel`, then the model)")
    rb.add_argument("cancel_model", nargs="?", metavar="MODEL",
                    help="`vigil rollback cancel MODEL`: cancel the model's pending rollback if nothing of it moved")
    rb.add_argument("--config", required=True, help="path to vigil.yaml")
    rb.add_argument("--reason", type=reason_arg, help="why, in words (written to the audit log); a rollback needs it")
    rb.add_argument("--to-version", type=version_arg,
                    help="the version to serve (default: the last version known good, never one an open or recent "
                         "incident blames)")
    rb.add_argument("--force", action="store_true", help="allow a --to-version an incident blames (audited)")
    rb.add_argument("--dry-run", action="store_true", help="audit and report what would change, move nothing")
    rb.add_argument("--incident", type=id_arg, metavar="ID",
                    help="the incident this rollback answers, whose messages show it (default: the model's newest "
                         "open incident)")
    rb.add_argument("--actor", default="operator", help="who asks; audited as cli:ACTOR (default: operator)")
    rb.set_defaults(func=cmd_rollback)
