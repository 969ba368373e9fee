"""A sender in a process of its own, for the outbox's crash and concurrency tests.

    python -m tests.outbox_sender_proc --store URL --now T (--sink PATH | --slack URL --token TOKEN)
        [--claim-s S] [--ready FILE --go FILE]

Drains the store's outbox as the daemon's sender does, until no row is left pending or
being sent; `VIGIL_FAILPOINTS` makes it die where a test wants (e.g.
`after_notifier_call=kill@2`). With `--ready`/`--go` it creates the first file once its
imports are done and waits for the second, so two processes start sending together.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from alerts.outbox import Notifier
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store


def notifiers(args: argparse.Namespace) -> dict[str, Notifier]:
    if args.sink:
        from alerts.sink import JsonlSink

        return {"sink": JsonlSink(args.sink, console=False)}
    from alerts.slack import SlackNotifier

    return {"slack": SlackNotifier(args.token, base_url=args.slack, max_rate_limit_retries=5, timeout_s=5.0)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True)
    p.add_argument("--now", type=float, required=True)
    p.add_argument("--sink")
    p.add_argument("--slack")
    p.add_argument("--token")
    p.add_argument("--claim-s", type=float)
    p.add_argument("--ready")
    p.add_argument("--go")
    args = p.parse_args(argv)
    store = Store(args.store)
    kwargs: dict[str, Any] = {"claim_s": args.claim_s} if args.claim_s else {}
    sender = OutboxSender(store, notifiers(args), VigilMetrics(), **kwargs)
    if args.ready:
        Path(args.ready).touch()
    if args.go:
        waited = time.monotonic() + 30
        while not Path(args.go).exists() and time.monotonic() < waited:
            time.sleep(0.005)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sent = sender.deliver_due(args.now)
        counts = store.outbox_counts()
        if not counts.get("pending") and not counts.get("sending"):
            return 0
        if not sent:
            time.sleep(0.01)  # the other sender holds what is left
    return 3


if __name__ == "__main__":
    raise SystemExit(main())
