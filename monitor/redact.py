"""One place that knows what a secret looks like in text, so none leaves Vigil: not in
/readyz, logs, API error bodies, nor Slack and sink messages.

    redact("GET http://vigil:hunter2@prom:9090/api?token=abc failed")
    -> "GET http://vigil:***@prom:9090/api?token=*** failed"

Credentials hide in URLs (`user:password@host`), in query parameters named like a
secret, and as tokens that announce themselves (Slack `xox*-`, `Bearer ...`, Grafana
`glsa_`). The user name stays: it says which account failed without opening it.
"""
from __future__ import annotations

import re
from typing import Any

MASK = "***"

# scheme://user:password@ — the password runs to the last '@' before the path, since a
# password may itself hold an unescaped '@' (and would otherwise leak its tail).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)(?P<secret>[^\s/?#]*)@(?=[^\s@/?#]+)")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:[A-Za-z0-9_.-]*(?:token|api[_-]?key|apikey|password|passwd|secret|signature|sig|auth))=)"
    r"(?P<secret>[^&#\s'\"]+)", re.IGNORECASE)
_TOKENS = re.compile(r"(xox[abposr]-[A-Za-z0-9-]+|Bearer\s+[A-Za-z0-9._~+/=-]+|glsa_[A-Za-z0-9_]+)")


def redact(text: str) -> str:
    """`text` with every credential it holds replaced by ***."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)
    return _TOKENS.sub("[REDACTED]", text)


def redact_obj(obj: Any) -> Any:
    """Every string inside `obj` (dicts, lists, tuples) redacted; other values as they are."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj
