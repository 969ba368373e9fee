"""Give a store the configured audit key and a checkpointer that hears of its commits."""
from __future__ import annotations

import logging
from pathlib import Path

from monitor.audit.checkpointer import AuditSettings, Checkpointer
from monitor.audit.keys import AuditKeyError, load_key
from monitor.config import VigilConfig
from monitor.metrics import VigilMetrics
from monitor.store import audit_log
from monitor.store.repository import Store

log = logging.getLogger("vigil.audit")


def settings_for(config: VigilConfig) -> AuditSettings:
    """Reads the key (raises AuditKeyError when a configured one cannot be read)."""
    a = config.audit
    return AuditSettings(load_key(a, Path(config.base_dir)),
                         config.resolve_path(a.checkpoint_file) if a.checkpoint_file else None,
                         a.checkpoint_every, a.checkpoint_interval_s)


def install(store: Store, config: VigilConfig, metrics: VigilMetrics | None) -> Checkpointer:
    settings = settings_for(config)
    checkpointer = Checkpointer(store, settings, metrics)
    store.audit_key = settings.key
    store.audit_listener = checkpointer.committed
    if metrics is not None:
        metrics.audit_keyed.set(1 if settings.key is not None else 0)
    if settings.key is None and _keyed(store):  # said at start-up, not found by the next `vigil audit verify`
        log.warning("the audit log is keyed (HMAC) but this config has no audit key: every entry this process "
                    "appends will read as tampering to `vigil audit verify`; set audit.key_env or audit.key_file")
    return checkpointer


def store_for_command(url: str, config: VigilConfig | None, *, existing: bool = False) -> Store:
    """The store for a command that appends to the audit log (`vigil silence`, `vigil
    outbox drop`), keyed with the config's audit key as the daemon's. Without a key on a
    keyed log it is refused before anything is written: its entry would break the chain
    for `vigil audit verify` exactly as a forged one does. `existing`: a command that acts
    on what the store holds (expire a silence, drop messages) refuses a missing SQLite file."""
    from monitor.store.existing import existing_store

    store = existing_store(url) if existing else Store(url)
    if config is not None:
        store.audit_key = settings_for(config).key
    try:
        refuse_unkeyed(store)
    except AuditKeyError:
        store.close()
        raise
    return store


def refuse_unkeyed(store: Store) -> None:
    """AuditKeyError when `store`'s audit log is keyed and this process has no key: a
    command must stop before it appends (`vigil rollback` too), not warn as the daemon does."""
    if store.audit_key is None and _keyed(store):
        raise AuditKeyError("the store's audit log is keyed (HMAC) and this command has no key: give --config "
                            "with the daemon's audit.key_env or audit.key_file")


def _keyed(store: Store) -> bool:
    with store.tx() as s:
        return audit_log.is_keyed(s)
