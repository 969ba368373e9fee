"""`vigil outbox list|drop`: what the notification outbox has not delivered, per notifier,
and how to let go of the messages of a notifier taken out of the config.

Those messages otherwise wait for ever (a notifier missing from one process may be
configured in another, so no sender judges them) and keep VigilNotificationStuck firing.
A drop marks them failed, with the reason, and is audited as cli:ACTOR; it refuses a
notifier the config still names (its messages will be delivered) unless --force.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    from monitor.store.tables import OutboxRow

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _age(now: float, t: float | None) -> str:
    return "-" if t is None else str(dt.timedelta(seconds=int(max(0.0, now - t))))


def cmd_list(args: argparse.Namespace) -> int:
    from monitor.cli_silence import where
    from monitor.notifiers import may_deliver
    from monitor.store.existing import existing_store

    url, cfg = where(args)
    store = existing_store(url)
    try:
        rows = store.outbox.backlog()
        held = store.outbox.suppressed() if args.suppressed else []
    finally:
        store.close()
    now = time.time()
    if args.suppressed:
        return _print_suppressed(held, args.json)
    if args.json:
        print(json.dumps([{"notifier": b.notifier, "open": b.open, "failed": b.failed, "suppressed": b.suppressed,
                           "oldest_open_age_s": None if b.oldest_open_at is None else now - b.oldest_open_at,
                           "configured": None if cfg is None else may_deliver(cfg, b.notifier)} for b in rows]))
        return 0
    if not rows:
        print("nothing waits in the outbox")
    for b in rows:
        note = "" if cfg is None or may_deliver(cfg, b.notifier) else \
            f"  (not in the config: `vigil outbox drop --notifier {b.notifier}` lets them go)"
        oldest = _age(now, b.oldest_open_at)
        held_back = f"  suppressed {b.suppressed:>6}" if b.suppressed else ""
        print(f"{b.notifier:<20} open {b.open:>6}  oldest {oldest:>16}  failed {b.failed:>6}{held_back}{note}")
    return 0


def _print_suppressed(rows: list[OutboxRow], as_json: bool) -> int:
    """The newest messages a silence held back at send time, each with the silence that did."""
    out = [{"id": r.id, "notifier": r.notifier, "kind": r.kind, "key": r.key,
            "change": r.payload.get("change") if isinstance(r.payload, dict) else None,
            "queued_at": r.created_at, "suppressed_at": r.next_attempt_at, "why": r.last_error} for r in rows]
    if as_json:
        print(json.dumps(out))
        return 0
    if not out:
        print("no message was suppressed")
    for o in out:
        print(f"#{o['id']} {o['notifier']} {o['key']} {o['change'] or o['kind']}: {o['why']}")
    return 0


def cmd_drop(args: argparse.Namespace) -> int:
    from monitor.audit.wiring import store_for_command
    from monitor.cli_silence import where
    from monitor.notifiers import BUILT_IN, may_deliver
    from monitor.store.audit_log import retry_audited

    url, cfg = where(args)
    if not args.force and (cfg is None or may_deliver(cfg, args.notifier)):
        why = "no config to check it against" if cfg is None else \
            f"{args.notifier!r} is still configured (or built in), so its messages will be delivered"
        print(f"vigil outbox drop: refused: {why}; remove it from the config first, or pass --force",
              file=sys.stderr)
        return 64
    store = store_for_command(url, cfg, existing=True)
    # A typo dropped nothing and said "0 message(s) dropped", exit 0: it looked done.
    known = sorted(BUILT_IN | {r.name for r in (cfg.receivers if cfg else [])} | set(store.outbox.notifiers()))
    if args.notifier not in known:
        store.close()
        print(f"vigil outbox drop: --notifier {args.notifier!r}: no such notifier in the config or the outbox; "
              f"known: {', '.join(known)}", file=sys.stderr)
        return 64
    actor, now = f"cli:{args.actor}", time.time()

    def drop() -> int:
        with store.tx() as s:
            n = store.outbox.abandon(s, args.notifier, f"dropped by {actor}: {args.reason}", now)
            if n:
                store.audit_in(s, actor, "outbox.drop", f"notifier:{args.notifier}",
                               {"messages": n, "reason": args.reason}, now=now)
        return n

    try:
        n = retry_audited(drop, "drop the outbox messages")
    finally:
        store.close()
    print(f"{n} message(s) for {args.notifier} dropped" + (f" (audited as {actor})" if n else ""))
    return 0


def add_outbox(sub: _Subparsers) -> None:
    from monitor.cli_silence import store_options

    summary = "what the notification outbox has not delivered, per notifier; drop a removed notifier's messages"
    p = sub.add_parser("outbox", help=summary, description=summary)
    osub = p.add_subparsers(dest="outbox_command", required=True, help="`vigil outbox COMMAND --help`")

    ls = osub.add_parser("list", help="per notifier: open, failed and suppressed messages, the oldest open one's age",
                         description=summary)
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ls.add_argument("--suppressed", action="store_true",
                    help="the newest 20 messages a silence held back at send time, each naming the silence")
    store_options(ls)
    ls.set_defaults(func=cmd_list)
    dr = osub.add_parser("drop", help="mark a notifier's open messages failed (audited)", description=summary)
    dr.add_argument("--notifier", required=True, help="the notifier whose open messages to let go")
    dr.add_argument("--reason", required=True, help="why (audited), e.g. 'PagerDuty receiver removed, OPS-9'")
    dr.add_argument("--actor", default="operator", help="who; audited as cli:ACTOR (default: operator)")
    dr.add_argument("--force", action="store_true", help="drop even when the config still names the notifier")
    store_options(dr)
    dr.set_defaults(func=cmd_drop)
