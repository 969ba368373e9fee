"""`vigil` command line: run, serve, demo, replay, check-config, dashboards, rollback, audit, token, db, status."""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError, ProgrammingError

from monitor.audit.keys import AuditKeyError
from monitor.cli_args import (
    EX_CANTCREAT,
    CannotWrite,
    duration_arg,
    http_url_arg,
    made_out_dir,
    seq_arg,
    store_url_arg,
    time_arg,
)
from monitor.cli_check import add_check_config, checked
from monitor.cli_outbox import add_outbox
from monitor.cli_rollback import add_rollback
from monitor.cli_silence import add_silence
from monitor.cli_store import add_db, add_status, store_error_exit
from monitor.config import ConfigError, VigilConfig, load_config
from monitor.config_auth import TOKEN_NAME_PATTERN
from monitor.logging_setup import setup_logging
from monitor.store.schema import StoreBehind
from monitor.version import vigil_version

if TYPE_CHECKING:  # the replay loop imports the whole daemon: only `vigil replay` and `vigil demo` pay for it
    from typing import TypeAlias

    from monitor.clock import Clock
    from monitor.replay.loop import ReplayResult

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _load(path: str) -> VigilConfig:
    try:
        return load_config(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(2) from None


def _load_with_tokens(path: str) -> VigilConfig:
    """The config, once its API tokens and audit key resolve (a missing token file stops the
    start, not a request), refused with the lines check-config prints, all of them at once."""
    cfg, issues = checked(path)
    if cfg is None or issues:
        print(str(ConfigError(issues, path)), file=sys.stderr)
        raise SystemExit(2)
    return cfg


def _print_timeline(result: ReplayResult, out: Path) -> None:
    print(f"\nTimeline ({result.cycles} cycles replayed):")
    for t, line in result.timeline:
        print(f"  {dt.datetime.fromtimestamp(t, dt.UTC).strftime('%Y-%m-%d %H:%M')}  {line}")
    print(f"\n{len(result.incidents)} incident(s) written to {out}")
    print(f"notifications (what Slack would have received): {result.notifications_path}")
    print(f"Vigil's own metrics over the replay (OpenMetrics, for Grafana): {result.vigil_metrics_path}")


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        return _replay(args)
    except (ValueError, FileNotFoundError) as e:  # bad range, bad bundle: say what, no traceback
        print(f"vigil replay: {e}", file=sys.stderr)
        return 2


def _replay(args: argparse.Namespace) -> int:
    from monitor.replay.loop import ReplayOptions, ReplaySpan, replay, run_bundle

    out = made_out_dir(args.out, file=True)  # before minutes of replay (a bundle's Prometheus) are spent
    if args.bundle:
        result = run_bundle(Path(args.bundle), out, step=args.step, progress=not args.quiet)
    else:
        if not args.config or args.start is None or args.end is None:
            print("vigil replay: give --bundle DIR, or --config FILE --from T --to T", file=sys.stderr)
            return 64
        cfg = _load(args.config)
        span = ReplaySpan(args.start, args.end, args.step or cfg.schedule.interval)
        result = replay(cfg, span, ReplayOptions(out_path=out, progress=not args.quiet))
    _print_timeline(result, out)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.replay.demo import generate_bundle
    from monitor.replay.loop import run_bundle

    out_dir = made_out_dir(args.out)
    t0 = time.perf_counter()
    bundle = generate_bundle(out_dir / "bundle", seed=args.seed)
    print(f"demo bundle written to {bundle} (seed {args.seed}); replaying it against a local Prometheus "
          f"and a SQLite MLflow registry ...")
    result = run_bundle(bundle, out_dir / "incidents.jsonl", workdir=out_dir / "work", progress=not args.quiet)
    _print_timeline(result, out_dir / "incidents.jsonl")
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0


def _clock(args: argparse.Namespace) -> Clock | None:
    """--clock-file: replay time shared through a file (testing and the chaos benchmark)."""
    if not args.clock_file:
        return None
    from monitor.clock import FileClock

    try:
        return FileClock(args.clock_file)
    except (OSError, ValueError) as e:
        print(f"--clock-file {args.clock_file}: expected a file holding epoch seconds ({e})", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.daemon import run_daemon
    from monitor.replicas import AnotherDaemonRunning

    try:
        return _exit_after_stop(run_daemon(_load_with_tokens(args.config), serve_api=not args.no_api,
                                           config_path=args.config, clock=_clock(args)))
    except AnotherDaemonRunning as e:
        print(f"vigil run: {e}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: nothing is wrong with the config; the store is taken
    except StoreBehind as e:
        print(f"vigil run: {e}", file=sys.stderr)
        return 78  # EX_CONFIG: the store needs `vigil db upgrade` first


def cmd_serve(args: argparse.Namespace) -> int:
    from monitor.daemon import serve_api_only

    try:
        return _exit_after_stop(serve_api_only(_load_with_tokens(args.config), config_path=args.config,
                                               clock=_clock(args)))
    except StoreBehind as e:
        print(f"vigil serve: {e}", file=sys.stderr)
        return 78


def _exit_after_stop(code: int) -> int:
    """After a stop that abandoned work, leave at once: the abandoned cycle's thread would
    otherwise hold the interpreter's exit past the grace (its transaction never commits,
    so it leaves nothing half-written)."""
    from monitor.shutdown import EXIT_ABANDONED

    if code == EXIT_ABANDONED:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def cmd_dashboards(args: argparse.Namespace) -> int:
    from monitor.grafana.provision import run_dashboards

    cfg = _load(args.config)
    if args.out:
        made_out_dir(args.out)
    return run_dashboards(cfg, args.out, args.grafana_url, None)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from monitor.audit.command import run_verify

    return run_verify(args, _load(args.config) if args.config else None)


def cmd_token_hash(args: argparse.Namespace) -> int:
    """The sha256 to put in api.tokens[].token_sha256 (or a tokens file line with --name and --role)."""
    import getpass

    from monitor.identities import hash_token

    if args.name is not None and not re.fullmatch(TOKEN_NAME_PATTERN, args.name):
        # Printed anyway, the line would be refused by the next start or reload.
        print(f"vigil token hash: --name {args.name!r}: expected 1-64 letters, digits, '_', '.', '@' or '-', "
              "starting with a letter or digit", file=sys.stderr)
        return 64
    if args.models is not None and (args.name is None or not _models_word(args.models)):
        # The fourth word of a tokens_file line: a bad one would be refused by the next start or reload.
        print(f"vigil token hash: --models {args.models!r}: expected, with --name, comma-separated model names or "
              "patterns without spaces (team-a-*,fraud-scorer), each 1-100 characters", file=sys.stderr)
        return 64
    token = (getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.read()).strip()
    if not token:
        print("vigil token hash: no token on stdin (e.g. `printf %s \"$TOKEN\" | vigil token hash`)", file=sys.stderr)
        return 64
    digest = hash_token(token)
    scope = f" {args.models}" if args.models else ""
    print(f"{args.name} {args.role} {digest}{scope}" if args.name else digest)
    return 0


def _models_word(word: str) -> bool:
    return not any(c.isspace() for c in word) and all(0 < len(p) <= 100 for p in word.split(","))


_CONFIG_HELP = "path to vigil.yaml"
_CLOCK_FILE_HELP = ("testing and replay only: read the time from this file (epoch seconds, rewritten by a driver "
                    "such as `python -m benchmarks.chaos`) instead of the system clock; scheduling stays real-time")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil", description="AIOps monitoring and root cause for ML models")
    p.add_argument("--version", action="version", version=f"%(prog)s {vigil_version()}",
                   help="print Vigil's version and exit")
    _add_log_options(p, "INFO", "text")
    sub = p.add_subparsers(dest="command", required=True, help="`vigil COMMAND --help` for its options")
    for add in (add_check_config, _add_replay, _add_demo, _add_run, _add_serve, _add_dashboards, add_rollback,
                _add_audit, _add_token, add_silence, add_outbox, add_db, add_status):
        add(sub)
    _log_options_after_commands(p)
    return p


def _add_log_options(p: argparse.ArgumentParser, level: str, fmt: str) -> None:
    p.add_argument("--log-level", default=level, type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="DEBUG, INFO, WARNING or ERROR, any case (default: INFO)")
    p.add_argument("--log-format", choices=["json", "text"], default=fmt,
                   help="text for a terminal, json for a log shipper (default: text)")


def _log_options_after_commands(p: argparse.ArgumentParser) -> None:
    """`vigil run --config F --log-format json` as well as `vigil --log-format json run ...`:
    every (sub)command takes the log options too. SUPPRESS as their default, so a command that
    is not given them keeps what the top level parsed instead of overwriting it."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_log_options(sub, argparse.SUPPRESS, argparse.SUPPRESS)
                _log_options_after_commands(sub)


def _command(sub: _Subparsers, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose one-line summary is both its entry in `vigil --help` and its own description."""
    return sub.add_parser(name, help=summary, description=summary)


def _add_replay(sub: _Subparsers) -> None:
    r = _command(sub, "replay", "run the production cycle over recorded history")
    r.add_argument("--bundle", help="scenario bundle directory (starts local Prometheus + MLflow)")
    r.add_argument("--config", help="vigil.yaml whose sources hold the history (with --from and --to, "
                                    "instead of --bundle)")
    r.add_argument("--from", dest="start", type=time_arg,
                   help="first cycle: RFC 3339 (2026-11-20T08:00:00Z) or epoch seconds")
    r.add_argument("--to", dest="end", type=time_arg,
                   help="last cycle: RFC 3339 (2026-11-20T14:00:00Z) or epoch seconds")
    r.add_argument("--step", type=duration_arg, default=None, help="e.g. 1m (default: schedule.interval)")
    r.add_argument("--out", default="incidents.jsonl",
                   help="incidents, one JSON object per line; notifications and Vigil's metrics are written "
                        "next to it (default: incidents.jsonl)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_replay)


def _add_demo(sub: _Subparsers) -> None:
    d = _command(sub, "demo", "generate the embedded demo scenario and replay it")
    d.add_argument("--out", default="demo-out", help="directory for the bundle and the replay (default: demo-out)")
    d.add_argument("--seed", type=int, default=7, help="random seed of the generated data (default: 7)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo)


def _add_run(sub: _Subparsers) -> None:
    run = _command(sub, "run", "the daemon: scheduled cycles plus the HTTP API")
    run.add_argument("--config", required=True, help=_CONFIG_HELP)
    run.add_argument("--no-api", action="store_true", help="run the cycles without the HTTP API")
    run.add_argument("--clock-file", metavar="PATH", help=_CLOCK_FILE_HELP)
    run.set_defaults(func=cmd_run)


def _add_serve(sub: _Subparsers) -> None:
    s = _command(sub, "serve", "the HTTP API only (no cycles)")
    s.add_argument("--config", required=True, help=_CONFIG_HELP)
    s.add_argument("--clock-file", metavar="PATH", help=_CLOCK_FILE_HELP)
    s.set_defaults(func=cmd_serve)


def _add_dashboards(sub: _Subparsers) -> None:
    db = _command(sub, "dashboards", "write Grafana provisioning files or provision over the API")
    db.add_argument("--config", required=True, help=_CONFIG_HELP)
    db.add_argument("--out", help="write provisioning files under this directory")
    db.add_argument("--grafana-url", type=http_url_arg,
                    help="provision over this Grafana's HTTP API (default: grafana.url in the config, when --out "
                         "is not given); token from $GRAFANA_TOKEN")
    db.set_defaults(func=cmd_dashboards)


def _add_audit(sub: _Subparsers) -> None:
    a = _command(sub, "audit", "audit log tools")
    asub = a.add_subparsers(dest="audit_command", required=True, help="`vigil audit COMMAND --help` for its options")
    av = _command(asub, "verify", "verify the audit log: its (keyed) hash chain and its signed checkpoints")
    av.add_argument("--config", help="vigil.yaml whose store, audit key and checkpoint file to use")
    av.add_argument("--store", type=store_url_arg, help="store URL (overrides the config's)")
    av.add_argument("--key-env", help="environment variable holding the audit key (default: the config's "
                                      "audit.key_env or audit.key_file)")
    av.add_argument("--key-file", help="file holding the audit key (default: the config's)")
    av.add_argument("--checkpoint-file", help="signed checkpoints to compare the log with (default: the config's "
                                              "audit.checkpoint_file)")
    av.add_argument("--expect-seq", type=seq_arg, default=None, metavar="SEQ",
                    help="fail when the log ends before this seq (e.g. max_over_time(vigil_audit_head_seq[30d]) "
                         "from Prometheus)")
    av.set_defaults(func=cmd_audit_verify)


def _add_token(sub: _Subparsers) -> None:
    t = _command(sub, "token", "API token tools")
    tsub = t.add_subparsers(dest="token_command", required=True, help="`vigil token COMMAND --help` for its options")
    th = _command(tsub, "hash", "print the sha256 of a token read from stdin, for api.tokens[].token_sha256")
    th.add_argument("--name", help="print a tokens_file line `NAME ROLE SHA256` instead of the hash alone")
    th.add_argument("--role", choices=["viewer", "ingest", "operator", "admin"], default="viewer",
                    help="the role for --name (default: viewer)")
    th.add_argument("--models", help="with --name: the token's models, comma-separated names or patterns "
                                     "(team-a-*,fraud-scorer), as the line's fourth word")
    th.set_defaults(func=cmd_token_hash)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    if getattr(args, "audit_command", None) == "verify" and not (args.store or args.config):
        print("vigil audit verify: give --config FILE or --store URL", file=sys.stderr)
        return 64
    logging.getLogger("vigil").debug("command", extra={"command": args.command})
    try:
        return int(args.func(args) or 0)
    except AuditKeyError as e:  # a configured audit key that cannot be read: never run unkeyed
        print(f"vigil {args.command}: {e}", file=sys.stderr)
        return 2
    except CannotWrite as e:  # an --out that cannot be written, found before any work
        print(f"vigil {args.command}: {e}", file=sys.stderr)
        return EX_CANTCREAT
    except (OperationalError, ProgrammingError) as e:  # a store not reachable, or not at this Vigil's schema
        return store_error_exit(args, e)


if __name__ == "__main__":
    sys.exit(main())
