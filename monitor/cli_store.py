"""`vigil db upgrade|current|history|purge` and `vigil status`: the store, opened from
`--config FILE` or `--store URL` as `vigil audit verify` opens it."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError, ProgrammingError

from monitor.cli_args import store_url_arg
from monitor.config import ConfigError, VigilConfig, load_config

if TYPE_CHECKING:
    from typing import TypeAlias

    from sqlalchemy import Engine

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

_STORE_HELP = "store URL, e.g. sqlite:///vigil.db or postgresql+psycopg://vigil@db/vigil (overrides the config's)"
_CONFIG_HELP = "vigil.yaml whose store.url to use"


def _config(args: argparse.Namespace) -> VigilConfig | None:
    if not args.config:
        return None
    try:
        return load_config(args.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(2) from None


def _store_url(args: argparse.Namespace, cfg: VigilConfig | None) -> str:
    if args.store:
        return str(args.store)
    if cfg is None:
        name = " ".join(filter(None, [args.command, getattr(args, "db_command", None)]))
        print(f"vigil {name}: give --config FILE or --store URL", file=sys.stderr)
        raise SystemExit(64)
    return cfg.store.url


def _engine(url: str) -> Engine:
    """An engine, not a Store: opening a Store would create an empty store's schema."""
    from sqlalchemy import create_engine

    return create_engine(url, future=True)


def store_error_exit(args: argparse.Namespace, e: OperationalError | ProgrammingError) -> int:
    """One line and an exit code for a store error a command hit, never 130 lines of driver."""
    # A missing table (SQLite: OperationalError, PostgreSQL: ProgrammingError) is a store
    # behind this Vigil, to upgrade (78, as `vigil run`), not a database to wait for (75).
    behind = schema_problem(args)
    if behind is not None:
        print(f"vigil {args.command}: {behind}", file=sys.stderr)
        return 78
    if isinstance(e, ProgrammingError):
        raise e
    why = ((str(e.orig) if e.orig is not None else str(e)).strip().splitlines() or [type(e).__name__])[0]
    print(f"vigil {args.command}: cannot reach the store's database: {why}", file=sys.stderr)
    return 75  # EX_TEMPFAIL: try again once the database is up


def schema_problem(args: argparse.Namespace) -> str | None:
    """After a store error: why, when the store is reachable but its schema is not this
    Vigil's (Vigil upgraded, `vigil db upgrade` not run): its message names that command.
    None when the store cannot be read, or is at head (the error is something else)."""
    from sqlalchemy.engine import make_url

    from monitor.redact import redact
    from monitor.store.schema import StoreBehind, require_current

    try:
        url = getattr(args, "store", None) or load_config(args.config).store.url
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).exists()):
            return None  # never create an empty file just to look at it
        how = f"--store '{redact(url)}'" if getattr(args, "store", None) else f"--config {args.config}"
        engine = _engine(url)
        try:
            require_current(engine, how)
        finally:
            engine.dispose()
    except StoreBehind as e:
        return str(e)
    except Exception:  # no config, no database: the caller says what it can
        return None
    return None


def _when(t: float | None) -> str:
    return "never" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_db_current(args: argparse.Namespace) -> int:
    from monitor.redact import redact
    from monitor.store.existing import missing_sqlite_file
    from monitor.store.schema import SchemaState, status

    url = _store_url(args, _config(args))
    missing = missing_sqlite_file(url)
    if missing is not None:  # opening it would leave an empty file behind, and a typo would read as "empty"
        print(f"{redact(url)}: - (no such SQLite file {missing}: the daemon's first start or `vigil db upgrade` "
              "creates it at head; check the path)")
        return 0
    engine = _engine(url)
    try:
        st = status(engine)
    finally:
        engine.dispose()
    what = {SchemaState.EMPTY: "empty (created at head by the first start)",
            SchemaState.UNVERSIONED: "made before migrations (no revision): run `vigil db upgrade`",
            SchemaState.BEHIND: f"behind: run `vigil db upgrade` to reach {st.head}",
            SchemaState.CURRENT: "at head",
            SchemaState.UNKNOWN: f"at a revision this Vigil does not know (its head is {st.head})"}[st.state]
    print(f"{redact(url)}: {st.current or '-'} ({what})")
    return 0 if st.state in (SchemaState.CURRENT, SchemaState.EMPTY) else 1


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from monitor.redact import redact
    from monitor.store.schema import StoreBehind, upgrade

    url = _store_url(args, _config(args))
    engine = _engine(url)
    try:
        before, after = upgrade(engine, args.revision)
    except StoreBehind as e:
        print(f"vigil db upgrade: {e}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if before.current == after.current and before.state == after.state:
        print(f"{redact(url)}: already at {after.current}")
    else:
        print(f"{redact(url)}: upgraded {before.current or '(' + str(before.state) + ')'} -> {after.current}")
    return 0


def cmd_db_history(args: argparse.Namespace) -> int:
    from alembic.script import ScriptDirectory

    from monitor.store.schema import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    for rev in reversed(list(scripts.walk_revisions())):
        summary = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        head = " (head)" if rev.is_head else ""
        print(f"{rev.down_revision or '<base>'} -> {rev.revision}{head}: {summary}")
    return 0


def cmd_db_purge(args: argparse.Namespace) -> int:
    import json
    import time

    from monitor.store.existing import existing_store
    from monitor.store.retention import purge

    cfg = _config(args)
    if cfg is None:
        print("vigil db purge: give --config FILE (the retention periods are in it)", file=sys.stderr)
        return 64
    store = existing_store(_store_url(args, cfg))
    try:
        result = purge(store, cfg.retention, time.time(), dry_run=args.dry_run, config=cfg)
    finally:
        store.close()
    print(json.dumps({"dry_run": args.dry_run, **result.as_dict()}))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.cycle.deploys import alias_of
    from monitor.store.existing import existing_store
    from monitor.store.status import model_statuses

    cfg = _config(args)
    store = existing_store(_store_url(args, cfg))
    try:
        rows = model_statuses(store, [m.name for m in cfg.models] if cfg is not None else None,
                              {m.name: alias_of(m) for m in cfg.models} if cfg is not None else None)
    finally:
        store.close()
    if not rows:
        print("no model has run a cycle against this store yet")
        return 0
    for r in rows:
        incident = f"#{r.incident_id} {r.severity} since {_when(r.incident_opened_at)}: {r.incident_title}" \
            if r.incident_id is not None else "none"
        print(f"{r.model}\n  serving:       {r.serving or 'unknown'}\n  last cycle:    {_when(r.last_cycle_at)}\n"
              f"  open incident: {incident}\n  blind:         {'; '.join(r.blind) if r.blind else 'nothing'}")
    return 0


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help=_CONFIG_HELP)
    p.add_argument("--store", type=store_url_arg, help=_STORE_HELP)


def _command(sub: _Subparsers, name: str, summary: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=summary)


def add_db(sub: _Subparsers) -> None:
    d = _command(sub, "db", "the store's schema (migrations) and retention")
    dsub = d.add_subparsers(dest="db_command", required=True, help="`vigil db COMMAND --help` for its options")
    up = _command(dsub, "upgrade", "migrate the store to the newest schema (back it up first); a store made "
                                   "before migrations is recognised and stamped")
    _store_options(up)
    up.add_argument("--revision", default="head", help="migrate to this revision instead (default: head)")
    up.set_defaults(func=cmd_db_upgrade)
    cur = _command(dsub, "current", "print the store's schema revision; exit 1 when it is behind")
    _store_options(cur)
    cur.set_defaults(func=cmd_db_current)
    hist = _command(dsub, "history", "list the schema revisions this Vigil knows, oldest first")
    hist.set_defaults(func=cmd_db_history)
    pu = _command(dsub, "purge", "delete what the config's retention: periods let go (the daemon does it on "
                                 "schedule); the audit log is never purged")
    _store_options(pu)
    pu.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    pu.set_defaults(func=cmd_db_purge)


def add_status(sub: _Subparsers) -> None:
    s = _command(sub, "status", "each model's serving version, last cycle, open incident and blind sources, "
                                "read from the store")
    _store_options(s)
    s.set_defaults(func=cmd_status)
