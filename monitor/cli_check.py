"""`vigil check-config FILE`: every problem `vigil run` would refuse the file for, in one run,
each at its line, then the warnings of a file without errors.

`vigil run` reads the API tokens (their files) and the audit key before it starts; so does
the check. A file with errors, an unset `${VAR}` among them, still has those read, from its
`api:` and `audit:` sections: each unset variable stands in as a placeholder, a section that
does not validate is left out (its errors are reported already), and a problem on the line
of an unset variable is that variable's (a file named by it is not read). It used to take a
run to find the unset variables and another for the token files and the key.

Unless `--offline`, the Slack bot token is shown to Slack (`auth.test`): one it rejects is an
error naming the variable it comes from, a Slack that cannot answer a warning; then each channel
messages go to: one chat.postMessage would refuse is an error at its field's line, one Slack's
scopes do not let Vigil check a warning naming the scope (monitor/slack_check.py).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.config import ApiConfig, ConfigError, VigilConfig, load_config
from monitor.config_errors import ConfigIssue, line_of
from monitor.config_yaml import read_yaml
from monitor.slack_check import slack_problems

M = TypeVar("M", bound=BaseModel)

if TYPE_CHECKING:
    from typing import TypeAlias

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def checked(path: str) -> tuple[VigilConfig | None, list[ConfigIssue]]:
    """The configuration (None when it has errors) and every problem in it, in file order."""
    try:
        cfg = load_config(path)
    except ConfigError as e:
        issues = [*e.issues, *_secret_issues_despite(path)]
        return None, sorted(issues, key=lambda i: i.line or 0)
    return cfg, secret_issues(cfg, path)


def secret_issues(cfg: VigilConfig, path: str) -> list[ConfigIssue]:
    """What `vigil run` reads before it starts, all at once (it took one run per kind): the
    API tokens and the audit key it would refuse, each at its line in the file."""
    from monitor.audit.keys import AuditKeyError, load_key
    from monitor.identities import load_token_table

    issues: list[ConfigIssue] = []
    try:
        load_token_table(cfg, path)
    except ConfigError as e:
        issues += e.issues
    try:
        load_key(cfg.audit, Path(cfg.base_dir))
    except AuditKeyError as e:
        key = ("audit", "key_env" if cfg.audit.key_env is not None else "key_file")
        issues.append(ConfigIssue("", str(e), line_of(key, read_yaml(Path(path)).lines)))
    return issues


def _secret_issues_despite(path: str) -> list[ConfigIssue]:
    """`secret_issues` of a file that does not validate, from its `api:` and `audit:` alone."""
    from monitor.audit.config import AuditConfig
    from monitor.config_env import resolve_tree

    try:
        doc = read_yaml(Path(path))
    except ConfigError:  # not YAML: said by load_config already
        return []
    if not isinstance(doc.data, dict):
        return []
    unset = resolve_tree(doc.data)
    stand_ins = {name: hashlib.sha256(f"unset {name}".encode()).hexdigest() for name in unset.unset}
    data = resolve_tree(doc.data, {**os.environ, **stand_ins}).data  # (64 hex digits: a token_sha256 too)
    cfg = VigilConfig.model_construct(api=_section(ApiConfig, data.get("api")),
                                      audit=_section(AuditConfig, data.get("audit")),
                                      models=[], base_dir=os.path.dirname(os.path.abspath(path)))
    unset_lines = {line_of(loc, doc.lines) for loc, _ in unset.errors}
    return [i for i in secret_issues(cfg, path) if i.line is None or i.line not in unset_lines]


def _section(model: type[M], data: Any) -> M:
    """The section as written, or its defaults (nothing of it read) when it has errors: they are the file's."""
    try:
        return model.model_validate(data or {})
    except ValidationError:
        return model()


def cmd_check_config(args: argparse.Namespace) -> int:
    from monitor.identities import file_tokens

    cfg, issues = checked(args.config)
    slack = [] if cfg is None or args.offline else slack_problems(cfg, args.config)
    lines = read_yaml(Path(args.config)).lines if slack else {}
    issues += [ConfigIssue(p.path, p.message, line_of(p.loc, lines))  # at their lines, among the file's errors
               for p in slack if p.level == "error"]
    if cfg is None or issues:
        print(str(ConfigError(issues, args.config)), file=sys.stderr)
        return 1
    print(f"{args.config}: OK ({len(cfg.models)} model(s): {', '.join(m.name for m in cfg.models)})")
    from monitor.config_canary import canary_warnings
    from monitor.config_messages import button_warnings, link_warnings
    from monitor.config_types import query_warnings
    from monitor.model_scope import scope_warnings
    from monitor.receivers import secret_warnings
    from monitor.sources.prometheus_warnings import ignore_warnings_warnings

    api = cfg.api
    links = link_warnings(api.public_url, f"http://{api.host}:{api.port}", cfg.grafana.public_url or cfg.grafana.url)
    links += button_warnings(cfg.slack.bot_token, cfg.slack.signing_secret,
                             api.public_url or f"http://{api.host}:{api.port}")
    lines = read_yaml(Path(args.config)).lines  # (read and parsed a moment ago)
    for loc, warning in [*(((), w) for w in links), *((p.loc, p.text()) for p in slack), *query_warnings(cfg),
                          *canary_warnings(cfg), *secret_warnings(cfg),
                          *scope_warnings(cfg, file_tokens(cfg)),
                          *ignore_warnings_warnings(cfg.sources.prometheus.ignore_warnings)]:
        line = line_of(loc, lines) if loc else None  # a secret's key, as an error names its line
        print(f"{args.config}{'' if line is None else f':{line}'}: warning: {warning}", file=sys.stderr)
    return 0


def add_check_config(sub: _Subparsers) -> None:
    c = sub.add_parser("check-config", help="validate a vigil.yaml and print every error",
                       description="validate a vigil.yaml and print every error")
    c.add_argument("config", help="path to vigil.yaml")
    c.add_argument("--offline", action="store_true",
                   help="do not ask Slack whether it takes slack.bot_token (auth.test); check the file only")
    c.set_defaults(func=cmd_check_config)
