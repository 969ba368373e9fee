"""Structured logs: key=value (text) or one JSON object per line; secrets are redacted."""
from __future__ import annotations

import json
import logging
import re
import sys

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SECRET = re.compile(r"(xox[abposr]-[A-Za-z0-9-]+|Bearer\s+[A-Za-z0-9._~+/=-]+|glsa_[A-Za-z0-9_]+)")


def redact(text: str) -> str:
    return _SECRET.sub("[REDACTED]", text)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        d = {"ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
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


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Cycle chatter stays at DEBUG-worthy volume for replays; libraries stay quiet.
    for noisy in ("urllib3", "httpx", "httpcore", "slack_sdk", "alembic", "mlflow", "matplotlib", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
