"""Structured logs: key=value (text) or one JSON object per line; secrets are redacted
(monitor/redact.py) by a filter on the handler, so every logger's records pass it,
libraries' included, and by the formatters for tracebacks."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys

from monitor.redact import redact, redact_obj

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STD and not k.startswith("_")}


def iso_time(created: float) -> str:
    """RFC 3339 in UTC with milliseconds, as log shippers and people read it: 2026-12-03T14:22:30.123Z."""
    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        d = {"ts": iso_time(record.created), "level": record.levelname, "logger": record.name,
             "msg": redact(record.getMessage()), **_extras(record)}
        if record.exc_info:
            d["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(d, default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = redact(f"{line} {extras}".rstrip())
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class RedactingFilter(logging.Filter):
    """Rewrites a record before any formatter sees it: the message with its arguments
    merged in, and every extra field (an `extra={"url": ...}` is where a URL with its
    password most often travels)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the formatter reports it, as logging would
            return True
        record.msg, record.args = redact(message), None
        for key, value in _extras(record).items():
            if isinstance(value, (str, dict, list, tuple)):
                setattr(record, key, redact_obj(value))
        return True


_FORMAT = ["text"]
_SETUP: list[tuple[str, str]] = []  # (level, format) once setup_logging ran


def json_logs() -> bool:
    """True when stderr carries one JSON object per line: nothing else may print there."""
    return _FORMAT[0] == "json"


def current_setup() -> tuple[str, str] | None:
    """(level, format) of this process's setup_logging, for a worker process to repeat."""
    return _SETUP[-1] if _SETUP else None


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    _FORMAT[0] = fmt
    _SETUP[:] = [(level, fmt)]
    # MLflow, imported later, would give its logger a handler of its own (plain text lines
    # in a JSON stream, unredacted); this keeps its records on ours.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Cycle chatter stays at DEBUG-worthy volume for replays; libraries stay quiet, APScheduler
    # included (its "Running job ..." / "executed successfully" lines were 55 of 59 in 100 s).
    for noisy in ("urllib3", "httpx", "httpcore", "slack_sdk", "alembic", "mlflow", "matplotlib", "numba",
                  "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
