"""`vigil silence add|list|expire`: silences from a terminal, straight on the store the
daemon reads (no API token needed where the config and store are at hand), audited as
cli:ACTOR like `vigil rollback`."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.silences import Silence, SilenceError, SilenceState
from monitor.cli_args import id_arg, limit_arg, store_url_arg

if TYPE_CHECKING:
    from typing import TypeAlias

    from monitor.config import VigilConfig
    from monitor.store.repository import Store

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


DEFAULT_CONFIG = "vigil.yaml"
DEFAULT_DURATION = "2h"


def store_options(q: argparse.ArgumentParser) -> None:
    """--config and --store, read back by `where`."""
    q.add_argument("--config", default=DEFAULT_CONFIG, help="vigil.yaml whose store to use (default: vigil.yaml)")
    q.add_argument("--store", type=store_url_arg, help="store URL (overrides the config's)")


def where(args: argparse.Namespace) -> tuple[str, VigilConfig | None]:
    """The store URL (--store, else the config's) and the config, when there is one."""
    from monitor.config import ConfigError, load_config

    # --store alone: the default vigil.yaml, when there is one here, still gives the audit key.
    if args.store and not Path(args.config).exists():
        return args.store, None
    if args.config == DEFAULT_CONFIG and not Path(args.config).exists():
        # Not a broken file the person gave: they ran it away from the config (exit 64 as
        # `vigil status` without --config or --store).
        command = " ".join(w for w in (args.command, getattr(args, f"{args.command}_command", None)) if w)
        print(f"vigil {command}: no {DEFAULT_CONFIG} in this directory (the default of --config): "
              "give --config FILE or --store URL", file=sys.stderr)
        raise SystemExit(64)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(2) from None
    return args.store or cfg.store.url, cfg


def _store(args: argparse.Namespace, *, existing: bool = False) -> Store:
    """For a command that writes (and audits): keyed with the config's audit key."""
    from monitor.audit.wiring import store_for_command

    return store_for_command(*where(args), existing=existing)


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(s: Silence, now: float) -> str:
    matchers = ", ".join(map(str, s.matchers))
    return (f"{s.id:>5}  {s.state(now):<8} {_when(s.starts_at)} .. {_when(s.ends_at)}  {matchers}  "
            f"by {s.created_by}: {s.comment}" + (f"\n       problem: {s.problem}" if s.problem else ""))


def cmd_add(args: argparse.Namespace) -> int:
    from monitor.silence_ops import SilenceAsk, create

    now = time.time()
    ask = SilenceAsk(args.matchers, args.comment, args.created_by or args.actor, args.start, args.end,
                     None if args.end else args.duration or DEFAULT_DURATION)
    try:
        made = create(_store(args), ask, f"cli:{args.actor}", now)
    except SilenceError as e:
        print(f"vigil silence add: {_typed(e.field)}: {_typed(e.reason)}", file=sys.stderr)
        return 64
    print(json.dumps(made.to_api(now)) if args.json else _line(made, now))
    return 0


# The API's fields a refusal names, as the options a person typed (`ends_at: ... after starts_at` was said).
_OPTIONS = {"starts_at": "--start", "ends_at": "--end", "duration": "--duration", "comment": "--comment",
            "created_by": "--created-by"}
_API_FIELD = re.compile(r"\b(starts_at|ends_at)\b")


def _typed(text: str) -> str:
    """A field name, or the times named in a reason, as their options."""
    return _OPTIONS.get(text) or _API_FIELD.sub(lambda m: _OPTIONS[m.group(1)], text)


def cmd_list(args: argparse.Namespace) -> int:
    from monitor.silence_ops import listing
    from monitor.store.existing import existing_store

    now = time.time()
    store = existing_store(where(args)[0])
    try:
        items, total = listing(store, now, SilenceState(args.state) if args.state else None, args.limit, 0)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"items": [s.to_api(now) for s in items], "total": total, "next": None}))
        return 0
    for s in items:
        print(_line(s, now))
    if total > len(items):
        print(f"({total - len(items)} more; --limit to see them)")
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    from monitor.silence_ops import expire

    now = time.time()
    got = expire(_store(args, existing=True), args.id, f"cli:{args.actor}", now)
    if got is None:
        print(f"vigil silence expire: silence {args.id} not found", file=sys.stderr)
        return 1
    print(_line(got, now))
    return 0


def add_silence(sub: _Subparsers) -> None:
    summary = "make, list and expire silences (matchers as in Alertmanager: model=recommender, severity=~warn.*)"
    p = sub.add_parser("silence", help=summary, description=summary)
    ssub = p.add_subparsers(dest="silence_command", required=True, help="`vigil silence COMMAND --help`")

    a = ssub.add_parser("add", help="silence the alerts these matchers select", description=summary)
    a.add_argument("matchers", nargs="+", help='one or more of NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX')
    a.add_argument("--comment", required=True, help="why: a ticket, a maintenance (audited)")
    a.add_argument("--start", help="RFC3339 or epoch seconds (default now)")
    until = a.add_mutually_exclusive_group()  # both given, the duration was dropped without a word
    until.add_argument("--duration", help="how long from --start (default 2h): 30m, 4h, 1d")
    until.add_argument("--end", help="RFC3339 or epoch seconds (instead of --duration)")
    a.add_argument("--created-by", help="who the silence is for (default: --actor)")
    a.add_argument("--actor", default="operator", help="who makes it; audited as cli:ACTOR (default: operator)")
    a.add_argument("--json", action="store_true", help="print the silence as JSON")
    store_options(a)
    a.set_defaults(func=cmd_add)

    ls = ssub.add_parser("list", help="list silences, newest first", description="list silences, newest first")
    ls.add_argument("--state", choices=[str(s) for s in SilenceState], help="only pending, active or expired ones")
    ls.add_argument("--limit", type=limit_arg, default=50, help="at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help='print {"items", "total", "next"} as the API does')
    store_options(ls)
    ls.set_defaults(func=cmd_list)

    ex = ssub.add_parser("expire", help="end a silence now (audited)", description="end a silence now (audited)")
    ex.add_argument("id", type=id_arg, help="the silence's id (vigil silence list)")
    ex.add_argument("--actor", default="operator", help="who ends it; audited as cli:ACTOR (default: operator)")
    store_options(ex)
    ex.set_defaults(func=cmd_expire)
