"""Option types of the `vigil` command line: each refuses a value it cannot use with one
line naming what was expected (argparse prints it with the option's name, exit 2)."""
from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

EX_CANTCREAT = 73  # sysexits: an output that cannot be created


def time_arg(value: str) -> float:
    """RFC3339 ('2026-11-20T08:00:00Z') or epoch seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected RFC3339 (2026-11-20T08:00:00Z) or epoch seconds, got {value!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp()


def duration_arg(value: str) -> float:
    """A duration above 0 (`--step 0s` was read as not given: a replay at schedule.interval)."""
    from monitor.config import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a duration above 0, such as '1m', got {value!r}")
    return seconds


def http_url_arg(value: str) -> str:
    """An http(s) URL with a host, as grafana.url must be: `grafana:3000` was tried as a
    URL with the scheme "grafana" and reported as Grafana being down."""
    from monitor.config_types import is_http_url

    if not is_http_url(value.strip()):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL with a host, such as "
                                         f"http://grafana:3000, got {value!r}")
    return value.strip()


def store_url_arg(value: str) -> str:
    """--store: a URL store.url takes. Another (`postgres://`, Heroku's spelling, or a bare
    file name) was a SQLAlchemy traceback when the command opened it."""
    from monitor.config_types import is_store_url
    from monitor.redact import redact

    if not is_store_url(value.strip()):
        # Redacted: the URL often comes from a Secret (the migration Job's $(VIGIL_STORE_URL)).
        raise argparse.ArgumentTypeError(f"expected sqlite:///path/to/vigil.db or postgresql+psycopg://user@host/db "
                                         f"(as store.url), got {redact(value)!r}")
    return value.strip()


def version_arg(value: str) -> str:
    """--to-version: a registry version number, as the API's `to_version` (1 to 18 digits).
    `v1`, as Vigil's messages write versions, was recorded and audited as a failed rollback."""
    v = value.strip()
    if not (v.isascii() and v.isdigit() and len(v) <= 18):
        raise argparse.ArgumentTypeError(f"expected a registry version number (digits, e.g. 1), got {value!r}")
    return str(int(v))  # as MLflow reads it: `02` is v2, and must meet v2's blame check as such


def reason_arg(value: str) -> str:
    """--reason: why, in words, as the API's `reason` (at least 3 characters besides spaces):
    `--reason ""` was a rollback audited with no why."""
    if sum(not c.isspace() for c in value) < 3:
        raise argparse.ArgumentTypeError(f"expected why, in words (3 characters besides spaces), got {value!r}")
    return value


MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in every store (monitor/api/schemas.py says the same)


def id_arg(value: str) -> int:
    """An incident or silence id, 1 to 2^63-1 as the API takes it: a 20-digit one was an
    OverflowError traceback from the store's driver."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_ID:
        raise argparse.ArgumentTypeError(f"expected an id, a whole number from 1 to {MAX_ID}, got {value!r}")
    return n


def seq_arg(value: str) -> int:
    """--expect-seq: an audit log seq, 0 to 2^63-1 as the store holds it; `-3` was taken and
    verified the log as if nothing had been expected."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_ID:
        raise argparse.ArgumentTypeError(f"expected the audit log's last seq, a whole number from 0 to {MAX_ID} "
                                         f"(e.g. max_over_time(vigil_audit_head_seq[30d])), got {value!r}")
    return n


def limit_arg(value: str) -> int:
    """--limit of a listing, 1 to 500 as the API's `limit`."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 500:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 500, got {value!r}")
    return n


class CannotWrite(Exception):
    """An output option that cannot be written; `vigil` prints it as one line, exit 73."""


def made_out_dir(out: str | Path, *, file: bool = False) -> Path:
    """`--out`'s directory (with `file`, the one the file goes in) made with its parents before
    any work; one that cannot be raises `CannotWrite` naming the option, the path and what was
    expected (it was a traceback, or an OS error naming neither)."""
    path = Path(out)
    folder = path.parent if file else path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reason = "" if os.access(folder, os.W_OK | os.X_OK) else f"{folder} is not writable"
    except OSError as e:
        reason = f"{e.strerror}: {e.filename}"
    if reason:
        what = "a file in a directory" if file else "a directory"
        raise CannotWrite(f"--out {path}: expected {what} this user can create and write ({reason})")
    return path
