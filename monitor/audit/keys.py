"""The audit key, read once at start-up from `audit.key_env` or `audit.key_file`.

A configured key that cannot be read is an error, never a silent fallback to the
unkeyed chain: an operator who set a key believes rewrites are detected.
"""
from __future__ import annotations

import os
from pathlib import Path

from alerts.audit import ChainKey
from monitor.audit.config import AuditConfig

# HMAC-SHA256 takes any length; fewer bytes than this is a password, not a key.
MIN_KEY_BYTES = 16


class AuditKeyError(Exception):
    """The configured audit key cannot be read or is too short; the message names the field."""


def _checked(secret: bytes, where: str) -> ChainKey:
    if len(secret) < MIN_KEY_BYTES:
        raise AuditKeyError(f"{where} holds {len(secret)} bytes; an audit key needs at least {MIN_KEY_BYTES} "
                            f"(e.g. `openssl rand -hex 32`)")
    return ChainKey(secret)


def key_from_env(name: str) -> ChainKey:
    value = os.environ.get(name, "").strip()
    if not value:
        raise AuditKeyError(f"audit.key_env: the environment variable {name} is not set")
    return _checked(value.encode(), f"audit.key_env ({name})")


def key_from_file(path: Path) -> ChainKey:
    try:
        secret = path.read_bytes().strip()
    except OSError as e:
        raise AuditKeyError(f"audit.key_file: cannot read {path}: {e.strerror}") from None
    return _checked(secret, f"audit.key_file ({path})")


def load_key(cfg: AuditConfig, base_dir: Path) -> ChainKey | None:
    """The configured key, or None when none is configured (the chain stays plain SHA-256)."""
    if cfg.key_env is not None:
        return key_from_env(cfg.key_env)
    if cfg.key_file is not None:
        return key_from_file(base_dir / Path(cfg.key_file).expanduser())
    return None
