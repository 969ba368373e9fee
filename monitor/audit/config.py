"""`audit:` in vigil.yaml: the key the audit chain is keyed with, and where its signed
checkpoints go.

    audit:
      key_env: VIGIL_AUDIT_KEY            # or key_file: /run/secrets/vigil-audit-key
      checkpoint_file: /var/lib/vigil/audit.checkpoints
      checkpoint_every: 100               # entries this process appended
      checkpoint_interval_s: 60           # and at most this long after a change (daemon)

The key is read when Vigil starts (monitor/audit/keys.py): a key that is configured but
cannot be read stops the start, it never falls back to an unkeyed chain.
"""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    # The same rules as monitor.config._Model; not imported from there because
    # monitor.config imports this module (importing back would be a cycle).
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuditConfig(_Model):
    key_env: str | None = None  # name of the environment variable holding the HMAC key
    key_file: str | None = None  # or a file holding it (relative paths: against the config file's folder)
    checkpoint_file: str | None = None  # append-only JSON lines, outside the database (None: metric + log only)
    checkpoint_every: int = Field(100, ge=1)  # entries this process appended since the last checkpoint
    checkpoint_interval_s: float = Field(60.0, gt=0)  # the daemon checkpoints a moved head this often

    @model_validator(mode="after")
    def _one_key(self) -> AuditConfig:
        if self.key_env is not None and self.key_file is not None:
            raise ValueError("set at most one of key_env and key_file")
        if self.key_env is not None and not _ENV_NAME.match(self.key_env):
            # The value is not echoed: someone may have pasted the key itself here.
            raise ValueError("key_env must be the name of an environment variable, such as VIGIL_AUDIT_KEY")
        return self
