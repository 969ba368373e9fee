"""SIGHUP: reload vigil.yaml after validating it, without losing what the process knows.

A file that does not validate is logged (every field and what was expected, as
`vigil check-config` prints it) and the running configuration kept. A good file gives a
new `Vigil` sharing what must outlive a configuration: the store, the clock, the metrics
registry (counters keep counting, readiness keeps its history), and the clients and
notifiers whose settings did not change. The daemon swaps it in between cycles: a cycle
already running finishes on the Vigil it started with, the next one uses the new
settings. Changing the store, or the API's address, takes a restart; the audit key is
never changed by a reload (a chain cannot change keys: what follows would fail to verify).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from monitor.audit.keys import AuditKeyError, load_key
from monitor.config import ConfigError, VigilConfig, load_config
from monitor.config_errors import render
from monitor.cycle.deploys import registry_source
from monitor.executors.build import layer_names
from monitor.identities import load_token_table
from monitor.vigil import Vigil

log = logging.getLogger("vigil.daemon")


@dataclass(frozen=True)
class JobChanges:
    """What the scheduler must change for a new configuration."""

    added: list[str]
    removed: list[str]
    retimed: bool  # interval or misfire grace changed: every kept model's job is rescheduled
    periods: dict[str, float] = field(default_factory=dict)  # other periodic jobs' new period (s), by job id


def read_valid(path: str) -> VigilConfig | None:
    """The new configuration, or None (logged) when it does not validate (its API tokens included)."""
    try:
        config = load_config(path)
        load_token_table(config, path)
        return config
    except ConfigError as e:
        detail = "; ".join(render(i, e.source) for i in e.issues)  # file:line: path: what, as check-config
        log.error("configuration reload refused, keeping the running configuration: %s", detail,
                  extra={"config": path, "errors": len(e.errors)})
        return None


def restart_only(old: VigilConfig, new: VigilConfig) -> tuple[list[str], list[str]]:
    """(refusals, warnings): a changed store cannot be swapped under running cycles; a
    changed API address keeps serving on the old one until a restart."""
    refusals = [f"store.url changed ({old.store.url!r} -> {new.store.url!r}): restart to use another store"] \
        if old.store.url != new.store.url else []
    warnings = [f"api.host/api.port changed to {new.api.host}:{new.api.port}: still serving on "
                f"{old.api.host}:{old.api.port} until a restart"] \
        if (old.api.host, old.api.port) != (new.api.host, new.api.port) else []
    return refusals, warnings


def audit_key_refusal(old: Vigil, config: VigilConfig) -> str | None:
    """Why `config` cannot be swapped in under the running audit chain, or None. The key is
    read again (a rotated key file, an edited `audit:`): a chain keyed from here on with
    another key, or none, would fail `vigil audit verify` from that entry on."""
    try:
        key = load_key(config.audit, Path(config.base_dir))
    except AuditKeyError as e:
        return f"audit key: {e}"
    running = old.store.audit_key
    ids = (running.key_id if running else None, key.key_id if key else None)
    if ids[0] != ids[1]:
        return (f"the audit key is not the running one (key id {ids[0] or 'none'} -> {ids[1] or 'none'}): "
                "an audit chain cannot change keys; restore the key or the audit section")
    return None


def successor(old: Vigil, config: VigilConfig) -> Vigil:
    """A Vigil for `config` that keeps the old one's store, clock, metrics and unchanged clients."""
    oc = old.config
    new = Vigil(config, clock=old.clock, store=old.store, metrics=old.metrics,
                prometheus=old.prometheus if config.sources.prometheus == oc.sources.prometheus else None,
                registry=old.registry if config.sources.mlflow == oc.sources.mlflow else None,
                notifiers=dict(old.notifiers) if (config.slack, config.grafana, config.receivers)
                == (oc.slack, oc.grafana, oc.receivers) else None)
    new.own_sources = old.own_sources  # what it keeps of the old one was built from the same sections
    _keep_log_trace_clients(old, new)
    new.checkpoints.carry_from(old.checkpoints)
    names = {m.name for m in config.models}
    new.last_cycle.update({k: v for k, v in old.last_cycle.items() if k in names})
    # A layer the old config used and the new one does not, or a removed model's registry
    # entry, is never marked again: kept, it read down in /readyz and VigilSourceDown fired
    # for it until a restart.
    unused = {f"rollback:{n}" for n in _layers(oc) - _layers(config)}
    unused |= {registry_source(m.name) for m in oc.models if m.name not in names}  # a model removed
    for name, state in old.health.states.items():  # what a source said last is still true
        # (a state with no URL, `rollback:<layer>` or `schedule`, is marked only when used:
        # dropped, /readyz forgot a layer that failed its last rollback)
        kept = new.health.states.get(name)
        if name in unused:
            with contextlib.suppress(KeyError):
                new.metrics.source_up.remove(name)
        elif (kept.url == state.url) if kept is not None else not state.url:
            new.health.states[name] = state
    return new


def _layers(config: VigilConfig) -> set[str]:
    return set().union(*(layer_names(m) for m in config.models))


def _keep_log_trace_clients(old: Vigil, new: Vigil) -> None:
    """An unchanged `sources.loki`/`sources.tempo` keeps its client (and its open connections);
    the one just built for it, never used, is closed."""
    lt, was = new.gather_sources.logs_traces, old.gather_sources.logs_traces
    keep = {name: getattr(was, name) for name in ("loki", "tempo") if getattr(lt, name) is not None
            and getattr(new.config.sources, name) == getattr(old.config.sources, name)}
    for name in keep:
        getattr(lt, name).close()
    new.gather_sources = dataclasses.replace(new.gather_sources, logs_traces=dataclasses.replace(lt, **keep))


def job_changes(old: VigilConfig, new: VigilConfig) -> JobChanges:
    before, after = [m.name for m in old.models], [m.name for m in new.models]
    retimed = (old.schedule.interval, old.schedule.misfire_grace) != (new.schedule.interval,
                                                                       new.schedule.misfire_grace)
    periods = {job: now for job, was, now in (
        ("retention-purge", old.retention.purge_interval, new.retention.purge_interval),
        ("audit-checkpoint", old.audit.checkpoint_interval_s, new.audit.checkpoint_interval_s)) if was != now}
    return JobChanges([n for n in after if n not in before], [n for n in before if n not in after], retimed,
                      periods)


def reload_vigil(old: Vigil, path: str | None) -> tuple[Vigil, JobChanges] | None:
    """The Vigil to swap in and the job changes, or None (logged) to keep the running one."""
    if path is None:
        log.warning("configuration reload asked, but this daemon was given no file to read")
        return None
    config = read_valid(path)
    if config is None:
        return None
    refusals, warnings = restart_only(old.config, config)
    refusals += [r for r in [audit_key_refusal(old, config)] if r]
    if refusals:
        log.error("configuration reload refused, keeping the running configuration: %s", "; ".join(refusals),
                  extra={"config": path})
        return None
    for w in warnings:
        log.warning("configuration reload: %s", w, extra={"config": path})
    changes = job_changes(old.config, config)
    new = successor(old, config)
    for name in changes.removed:
        new.metrics.forget_model(name)  # a model no longer watched must not read as stuck, or as critical
    log.info("configuration reloaded", extra={"config": path, "models": len(config.models),
                                              "added": ",".join(changes.added) or "-",
                                              "removed": ",".join(changes.removed) or "-"})
    return new, changes
