"""The value types of vigil.yaml: durations, secrets, and URLs with a fixed set of schemes.

Each is an `Annotated` str or float whose validator says what was expected, so a value
the daemon could not use is refused by `vigil check-config` instead of failing at start.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from monitor.config_env import EnvValue, lookup, parse_ref

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}
_WHOLE_REF = re.compile(r"^\$\{([^{}]*)\}$")


def whole_ref(value: str) -> str | None:
    """The inside of a value that is one whole `${...}` reference, else None."""
    m = _WHOLE_REF.match(value.strip())
    return m.group(1) if m else None


def parse_duration(value: Any) -> float:
    """'90s', '5m', '2h', '7d', '1w' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m', '2h', '7d'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("expected a non-negative duration")
        return _finite(float(value), value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return _finite(float(m.group(1)) * _UNIT_S[m.group(2)], value)
    raise ValueError(f"expected a duration such as '30s', '5m', '2h', '7d', got {value!r}")


def _finite(seconds: float, value: Any) -> float:
    # YAML's .nan and .inf (or 400 digits) are floats too: a NaN interval or cool-down
    # passes every comparison and breaks the scheduler or a guard at run time instead.
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration such as '30s', '5m', '2h', '7d', got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
# A period something runs at or reads over: 0 passes the parse but no daemon can use it.
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


def secret_value(value: Any) -> str | None:
    """A secret must be written as ${ENV_VAR}; its value is read from the environment.

    `load_config` has resolved references already (an `EnvValue`); a model built directly
    in code may still hold the reference text, resolved here by the same rules."""
    if value is None or value == "":
        return None
    if isinstance(value, EnvValue):
        if value.from_default:
            # The default is written in the file, which is what a secret must never be.
            raise ValueError(f"a secret cannot have a default: write ${{{value.ref.name}}}, "
                             f"or ${{{value.ref.name}:-}} if it is optional")
        # A Kubernetes secret made with --from-file keeps the file's newline; no token has one.
        stripped = str(value).strip()
        if not stripped and value.ref.default != "":
            raise ValueError(f"environment variable {value.ref.name} holds only whitespace")
        return stripped or None
    m = _WHOLE_REF.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ValueError("secrets are never written in the file: use a reference to an environment "
                         "variable such as ${SLACK_BOT_TOKEN}")
    ref = parse_ref(m.group(1))
    if ref.default == "" and not os.environ.get(ref.name):
        return None
    return secret_value(lookup(ref, os.environ))


Secret = Annotated[str | None, BeforeValidator(secret_value)]


def _url_check(accepts: Callable[[str], bool], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        # Stripped as checked: a URL from a ConfigMap or Secret keeps the file's newline, and
        # httpx refuses it (InvalidURL) at every call after the check said OK.
        value = value.strip()
        if not accepts(value):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


def _is_http(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


is_http_url = _is_http  # for the command line's URL options


def _is_registry(value: str) -> bool:
    # What monitor.sources.registry.RegistrySource has a transport for.
    return _is_http(value) or (value.lower().startswith("sqlite:///") and len(value) > len("sqlite:///"))


def _is_store(value: str) -> bool:
    # SQLAlchemy URLs whose driver is installed: sqlite (stdlib) and psycopg 3 (the postgres extra).
    return value.lower().startswith(("sqlite://", "postgresql+psycopg://"))


is_store_url = _is_store  # for the command line's --store


HttpURL = Annotated[str, _url_check(_is_http, "an http:// or https:// URL with a host, such as http://prometheus:9090")]


def _is_base(value: str) -> bool:
    # A source's client appends its API path (/api/v1/query) to this URL: after a query
    # string or fragment the path lands inside it, and every call fails (Prometheus answered
    # its UI's HTML: "JSONDecodeError" every cycle), so such a URL is refused at the check.
    # A bare "?" or "#" (an empty query or fragment) breaks the path as well.
    return _is_http(value) and "?" not in value and "#" not in value


SourceURL = Annotated[str, _url_check(
    _is_base, "an http:// or https:// URL with a host, such as http://prometheus:9090, and no ?query or "
              "#fragment (a base URL: Vigil appends the API path to it; a token goes in bearer_token)")]
RegistryURI = Annotated[str, _url_check(
    _is_registry, "http(s)://host:port (an MLflow tracking server) or sqlite:///path/to/mlflow.db; "
                  "other MLflow tracking URIs (databricks, file stores, ...) are not supported")]
StoreURL = Annotated[str, _url_check(
    _is_store, "sqlite:///path/to/vigil.db or postgresql+psycopg://user@host/db")]


def label_matchers(value: str) -> str:
    """PromQL label matchers put inside `metric{...}`: written with or without their braces
    (`{pod=~"a.*"}` as PromQL shows them, or `pod=~"a.*"`); any other brace would make every
    query built from them one Prometheus refuses."""
    text = value.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    quote, escaped = "", False
    for ch in text:
        if quote:
            escaped, quote = (not escaped and ch == "\\"), ("" if ch == quote and not escaped else quote)
        elif ch in "\"'`":
            quote = ch
        elif ch in "{}":
            raise ValueError('expected PromQL label matchers such as pod=~"recsys-.*" (braces optional)')
    return text


LabelMatchers = Annotated[str, AfterValidator(label_matchers)]


def _listen_host(value: str) -> str:
    # `0.0.0.0:8080`, as Prometheus's --web.listen-address is written: the daemon would start
    # its cycles and then stop, unable to bind. (IPv6 addresses have more than one colon.)
    if re.fullmatch(r"[^:\[\]]+:\d+", value.strip()):
        raise ValueError("expected a host or address without the port (the port goes in api.port)")
    return value.strip()


ListenHost = Annotated[str, AfterValidator(_listen_host)]


def sqlite_beside(url: Any, base_dir: str, field: str = "store.url") -> Any:
    """`sqlite:///rel/v.db` -> `sqlite:///<base_dir>/rel/v.db`; anything else as it is
    (absolute paths `sqlite:////...`, in-memory databases, other schemes, non-strings)."""
    prefix = "sqlite:///"
    if not isinstance(url, str) or not url.lower().startswith(prefix):
        return url
    path = url[len(prefix):]
    if not path or path.startswith(("/", ":memory:", "file:")):
        return url
    beside, here = os.path.join(base_dir, path), os.path.abspath(path)
    if not os.path.exists(beside) and os.path.abspath(beside) != here and _holds_rows(here):
        # Earlier versions read it here: opening an empty store beside the file would lose the
        # open incidents, rollbacks in flight and the audit log without a word.
        raise ValueError(f"{field}: {url} is read beside the config file, {beside}, which does not exist, while "
                         f"{here} does (where earlier versions read it, from the working directory): "
                         f"move it there, or write the absolute path {prefix}{here}; if it is another "
                         f"configuration's store, write {prefix}{os.path.abspath(beside)} to start one beside "
                         "this file")
    return prefix + beside


def _holds_rows(path: str) -> bool:
    """Whether an SQLite file exists there with a row in any table (schema versions aside): an
    empty store (a test's, a first start's) has nothing to lose."""
    if not os.path.isfile(path):
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return any(db.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in tables
                       if t not in ("alembic_version", "sqlite_sequence"))
    except sqlite3.Error:
        return False  # not a database these URLs could open either


def sqlite_paths_beside(data: Any, default_store_url: str) -> Any:
    """vigil.yaml's SQLite files (store.url, written or the default, and an SQLite
    sources.mlflow.tracking_uri) resolve against the file's folder like its other relative
    paths: against the working directory, `vigil status --config /etc/vigil/vigil.yaml` run
    elsewhere found no store, and `vigil rollback` made and audited into a new one there.
    Runs before validation (after ${ENV} references are resolved); `base_dir` "." (a config
    built in code) leaves them as written."""
    base = data.get("base_dir") if isinstance(data, dict) else None
    if not isinstance(base, str) or base == ".":
        return data
    out = dict(data)
    store = out.get("store", {})
    if isinstance(store, dict):
        out["store"] = {**store, "url": sqlite_beside(store.get("url", default_store_url), base)}
    sources = out.get("sources")
    mlflow = sources.get("mlflow") if isinstance(sources, dict) else None
    if isinstance(sources, dict) and isinstance(mlflow, dict) and "tracking_uri" in mlflow:
        uri = sqlite_beside(mlflow["tracking_uri"], base, "sources.mlflow.tracking_uri")
        out["sources"] = {**sources, "mlflow": {**mlflow, "tracking_uri": uri}}
    return out


_CLOSES = {")": "(", "]": "[", "}": "{"}


def promql_brackets(value: str) -> str:
    """A PromQL query whose brackets pair up (outside strings and # comments): one that does
    not passed `vigil check-config`, and every cycle then opened a "no data" warning over
    Prometheus' parse error, paging the owner about a typo in the file."""
    stack: list[tuple[str, int]] = []
    quote, escaped, comment = "", False, False
    for i, ch in enumerate(value, 1):
        if comment:
            comment = ch != "\n"
        elif quote:
            escaped, quote = (not escaped and ch == "\\" and quote != "`"), \
                ("" if ch == quote and not escaped else quote)
        elif ch in "\"'`":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "([{":
            stack.append((ch, i))
        elif ch in _CLOSES:
            if not stack or stack[-1][0] != _CLOSES[ch]:
                raise ValueError(f"PromQL brackets do not pair up: {ch!r} at character {i} closes nothing open")
            stack.pop()
    if quote:
        raise ValueError(f"PromQL string not closed: its {quote} is never matched")
    if stack:
        ch, i = stack[-1]
        raise ValueError(f"PromQL brackets do not pair up: unclosed {ch!r} at character {i}")
    return value


def query_warnings(config: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """What `vigil check-config` warns about in the KPI and SLO queries (a warning, not an
    error: such a query still runs, and fails as no data): each with the key it is about."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, m in enumerate(config.models):
        for kind, items in (("kpis", m.kpis), ("slos", m.slos)):
            for j, item in enumerate(items):
                for key in ("query", "volume_query"):
                    text = getattr(item, key)
                    try:
                        promql_brackets(text or "")
                    except ValueError as e:
                        where = f"models[{i}]({m.name}).{kind}[{j}]({item.name}).{key}"
                        out.append((("models", i, kind, j, key), f"{where}: {e}; Prometheus would refuse it, "
                                    "and each cycle would report it as no data"))
    return out
