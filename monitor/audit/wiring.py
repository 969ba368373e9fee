"""Give a store the configured audit key and a checkpointer that hears of its commits."""
from __future__ import annotations

from pathlib import Path

from monitor.audit.checkpointer import AuditSettings, Checkpointer
from monitor.audit.keys import load_key
from monitor.config import VigilConfig
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store


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
    return checkpointer
