"""Who may do what, as configured: named API tokens with roles, and the Slack people who
may press a model's buttons.

A token is never written in the file: the config holds its sha256 (`vigil token hash`
prints it), a file that holds it (a mounted secret), or a `${ENV}` reference. References
are resolved, and files read, when the API's token table is built
(monitor/identities.py), so an unset variable or a missing file is an error that names
the token, not a silently disabled identity.

Kept apart from monitor/config.py so that file stays readable.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.config_types import Secret

# viewer < operator < admin; `ingest` may only post samples (a serving side that pushes
# features has no business reading incidents or rolling back).
RoleName = Literal["viewer", "ingest", "operator", "admin"]
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
LEGACY_TOKEN_NAME = "admin"  # what `api.token` is called in the audit log

SlackUserId = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,}$", description="a Slack user ID (U…/W…)")]
SlackGroupId = Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,}$", description="a Slack user group ID (S…)")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TOKEN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$"  # also `vigil token hash --name`
# A model name or a shell-style pattern of names (`team-a-*`; monitor/model_scope.py).
ModelPattern = Annotated[str, Field(min_length=1, max_length=100, description="a model name or pattern: team-a-*")]


class ApiTokenConfig(_Model):
    """One named API token; exactly one of `token_sha256`, `token_file`, `token` says what it is."""

    name: str = Field(min_length=1, max_length=64, pattern=TOKEN_NAME_PATTERN)
    role: RoleName
    token_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    token_file: str | None = None  # holds the token itself; relative to the config file
    token: Secret = None  # only as ${ENV_VAR}, resolved like every secret (monitor/config_env.py)
    # The models its writes may name (rollback, ack, silences, samples, labels); absent: all.
    # An empty list is refused: it reads as "none" to some and "all" to others.
    models: list[ModelPattern] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> ApiTokenConfig:
        given = [k for k in ("token_sha256", "token_file", "token") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"token {self.name!r}: give exactly one of token_sha256, token_file or token "
                             f"(${{ENV_VAR}}), got {', '.join(given) or 'none'}")
        return self


def check_token_names(tokens: list[ApiTokenConfig], *, legacy: bool) -> None:
    """Names are what the audit log shows: two tokens must never share one."""
    names = [t.name for t in tokens] + ([LEGACY_TOKEN_NAME] if legacy else [])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        extra = (f" ({LEGACY_TOKEN_NAME!r} is api.token's name)" if LEGACY_TOKEN_NAME in dupes and legacy else "")
        raise ValueError(f"api token names must be unique, repeated: {', '.join(dupes)}{extra}")


class SlackPeopleConfig(_Model):
    users: list[SlackUserId] = Field(default_factory=list)
    groups: list[SlackGroupId] = Field(default_factory=list)  # members read with usergroups.users.list


class SlackActorsConfig(SlackPeopleConfig):
    """Who may press a model's Slack buttons: `users`/`groups` may ack and silence, and roll
    back unless `rollback` names a stricter list (then only those may roll back)."""

    rollback: SlackPeopleConfig | None = None
