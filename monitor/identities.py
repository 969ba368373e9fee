"""API identities: the configured tokens as a table of (name, role, sha256), and what
each role may do.

Roles: viewer < operator < admin, and `ingest`, which may only post samples. A route
names the least role it needs (`Role.VIEWER` for reads, `Role.OPERATOR` for ack,
silence and rollback, `Role.INGEST` for samples, `Role.ADMIN` for a forced rollback);
`satisfies` says whether a held role covers it. A token may also be scoped to some
models (`Identity.scope`): its writes that name a model outside them are refused
(monitor/api/deps.py `in_scope`), its reads are not.

Only hashes are kept in memory: a presented token is hashed and compared with every
entry in constant time (hmac.compare_digest), so neither the tokens nor the position of
a match leak through timing.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.config import ConfigError, VigilConfig
from monitor.config_auth import LEGACY_TOKEN_NAME, ApiTokenConfig
from monitor.config_errors import ConfigIssue, Loc, line_of
from monitor.config_yaml import read_yaml
from monitor.model_scope import ModelScope, scope_of


class Role(StrEnum):
    VIEWER = "viewer"
    INGEST = "ingest"
    OPERATOR = "operator"
    ADMIN = "admin"


_GRANTS: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.INGEST: frozenset({Role.INGEST}),
    Role.OPERATOR: frozenset({Role.VIEWER, Role.INGEST, Role.OPERATOR}),
    Role.ADMIN: frozenset(Role),
}


def satisfies(held: Role, needed: Role) -> bool:
    return needed in _GRANTS[held]


def roles_for(needed: Role) -> list[Role]:
    """Every role that may do what `needed` may, least first (for a 403 that says what would do)."""
    return [r for r in Role if satisfies(r, needed)]


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role
    scope: ModelScope | None = None  # the models its writes may name (`api.tokens[].models`); None: all

    def may_act_on(self, model: str) -> bool:
        return self.scope is None or self.scope.covers(model)

    @property
    def actor(self) -> str:
        """How the audit log names the caller: the token's name, never the token."""
        return f"api:{self.name}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenTable:
    entries: tuple[tuple[Identity, bytes], ...]  # (who, sha256 digest of their token)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def resolve(self, token: str) -> Identity | None:
        presented = hashlib.sha256(token.encode()).digest()
        found: Identity | None = None
        for identity, digest in self.entries:  # no early exit: every entry costs the same
            if hmac.compare_digest(presented, digest):
                found = identity
        return found


# --------------------------------------------------------------------------- building
_Problem = tuple[Loc, str, str]  # (where in the config, or () for a line of the tokens file; path; message)
_FILE: Loc = ("api", "tokens_file")


def load_token_table(config: VigilConfig, source: str | None = None) -> TokenTable:
    """The table for `config.api`; ConfigError names every token that cannot be resolved.
    `source`: the config file, whose name and lines the errors then carry, as check-config
    gives every other error (`vigil.yaml:7: api.tokens[0](ci): token_file: cannot read ...`)."""
    api = config.api
    entries: list[tuple[Identity, bytes]] = []
    errors: list[_Problem] = []
    if api.token:
        entries.append((Identity(LEGACY_TOKEN_NAME, Role.ADMIN), bytes.fromhex(hash_token(api.token))))
    tokens: list[tuple[Loc, str, ApiTokenConfig]] = [
        (("api", "tokens", i, _given(t)), f"api.tokens[{i}]({t.name})", t) for i, t in enumerate(api.tokens)]
    if api.tokens_file:
        tokens += _file_tokens(config, api.tokens_file, errors)
    for loc, where, t in tokens:
        try:
            entries.append((Identity(t.name, Role(t.role), scope_of(t.models)), _digest(config, t)))
        except ValueError as e:
            errors.append((loc, where, str(e)))
    names = [i.name for i, _ in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append((_FILE, "api.tokens_file", f"token names must be unique across api.tokens, api.token and the "
                                                 f"file, repeated: {', '.join(dupes)}"))
    # One token under two names would resolve to whichever came last: the wrong role, and
    # the audit log naming the wrong holder. Named, never shown (not even its hash).
    by_digest: dict[bytes, list[str]] = {}
    for identity, digest in entries:
        by_digest.setdefault(digest, []).append(identity.name)
    for names_ in by_digest.values():
        if len(names_) > 1:
            errors.append((("api", "tokens"), "api.tokens",
                           f"{', '.join(names_)} have the same token: give each its own"))
    if errors:
        raise _located(errors, source)
    return TokenTable(tuple(entries))


def _given(t: ApiTokenConfig) -> str:
    """The key that says what the token is (the line an error about it points at)."""
    return "token_file" if t.token_file else "token_sha256" if t.token_sha256 else "token"


def _located(errors: list[_Problem], source: str | None) -> ConfigError:
    lines: dict[Loc, int] = {}
    if source is not None:
        with contextlib.suppress(ConfigError):  # the file validated a moment ago; gone since: no lines
            lines = read_yaml(Path(source)).lines
    issues = [ConfigIssue(where, msg, line_of(loc, lines) if loc else None) for loc, where, msg in errors]
    issues.sort(key=lambda i: i.line or 0)  # in the order of the file, as check-config's others
    return ConfigError(issues, source or "api tokens")


def _digest(config: VigilConfig, t: ApiTokenConfig) -> bytes:
    if t.token_sha256:
        return bytes.fromhex(t.token_sha256)
    if t.token_file:
        path = config.resolve_path(t.token_file)
        try:
            raw = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ValueError(f"token_file: cannot read {path}: {e.strerror}") from None
        except UnicodeDecodeError:  # (said as the codec's words, without the file, before)
            raise ValueError(f"token_file: {path} is not UTF-8 text (save it as UTF-8)") from None
        if not raw:
            raise ValueError(f"token_file: {path} is empty")
        return bytes.fromhex(hash_token(raw))
    if not t.token:  # the config resolved ${VAR}; an optional one left unset gives no token
        raise ValueError("token: its environment variable is not set")
    return bytes.fromhex(hash_token(t.token))


def file_tokens(config: VigilConfig) -> list[tuple[str, ApiTokenConfig]]:
    """api.tokens_file's tokens, each with its place in the file (`tokens.txt:3`), for
    check-config's warnings (`load_token_table` reports what is wrong with the file)."""
    if not config.api.tokens_file:
        return []
    return [(where, t) for _, where, t in _file_tokens(config, config.api.tokens_file, [])]


def _file_tokens(config: VigilConfig, name: str, errors: list[_Problem]) -> list[tuple[Loc, str, ApiTokenConfig]]:
    """`api.tokens_file`: YAML (a list, or a mapping with `tokens:`) or lines of `name role sha256 [models]`."""
    path = config.resolve_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        errors.append((_FILE, "api.tokens_file", f"cannot read {path}: {e.strerror}"))
        return []
    except UnicodeDecodeError:  # was a traceback (check-config) or a failed reload
        errors.append((_FILE, "api.tokens_file", f"{path} is not UTF-8 (save it as UTF-8)"))
        return []
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None  # not YAML: read as lines
    if isinstance(data, dict):
        data = data.get("tokens")
    rows: list[tuple[str, Any]] = []
    if isinstance(data, list):
        rows = [(f"{path}: tokens[{i}]", item) for i, item in enumerate(data)]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            fields = _line_fields(line)
            if isinstance(fields, str):
                errors.append(((), f"{path}:{n}", fields))
            elif fields:
                rows.append((f"{path}:{n}", fields))
    out: list[tuple[Loc, str, ApiTokenConfig]] = []
    for where, item in rows:
        try:
            t = ApiTokenConfig.model_validate(item)
        except ValidationError as e:
            errors.append(((), where, "; ".join(_message(err) for err in e.errors())))
            continue
        out.append(((), where, t))
    return out


_LINE = ("expected `name role sha256 [models]`: three words (the sha256 from `vigil token hash`), and "
         "optionally the token's models as one word of comma-separated names or patterns, team-a-*,fraud-scorer")


def _line_fields(line: str) -> dict[str, Any] | str:
    """One line of the tokens file as ApiTokenConfig fields ({} for a blank or comment line),
    or what is wrong with it. The fourth word is `models`, split at commas, as a static token
    file's group column is (Kubernetes' `token,user,uid,"g1,g2"`)."""
    parts = line.split("#", 1)[0].split()
    if not parts:
        return {}
    if len(parts) not in (3, 4):
        return _LINE
    fields: dict[str, Any] = dict(zip(("name", "role", "token_sha256"), parts, strict=False))
    if len(parts) == 4:
        fields["models"] = parts[3].split(",")
        if "" in fields["models"]:  # `a,,b` or a trailing comma: refused, as `models: [""]` is
            return f"models: a pattern is empty in {parts[3]!r} ({_LINE})"
    return fields


def _message(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg
