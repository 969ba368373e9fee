"""`mlflow_alias`: the registry alias is the serving layer (servers that resolve
`models:/name@alias` when they load). Read the alias, move it, read it back."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from monitor.executors.base import ExecutorError, RollbackStep, Verification, before_write
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.registry import ModelNotFound, alias_tag, format_timestamp

T = TypeVar("T")
log = logging.getLogger("vigil.executors")


class AliasRegistry(Protocol):
    """The two registry calls this executor makes (RegistrySource and test stand-ins)."""

    def alias_version(self, name: str, alias: str) -> str | None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...


class ChallengerRegistry(AliasRegistry, Protocol):
    """A registry whose aliases can also be removed (pulling a canary)."""

    def delete_alias(self, name: str, alias: str) -> None: ...


def _reads(version: str | None) -> str:
    return "absent" if version is None else f"points at v{version}"


class MlflowAliasExecutor:
    """Moves `alias` of the step's registered model; the alias's version is what is served.

    `name` is what an intent records as moved: a second alias (`serving: {kind:
    mlflow_alias}`) needs a name of its own, or the first alias's step would count as done
    for both and a restart would skip the second one."""

    DEFAULT_NAME = "mlflow_alias"

    def __init__(self, registry: AliasRegistry, alias: str, *, name: str = DEFAULT_NAME) -> None:
        self.registry, self.alias, self.name = registry, alias, name

    def current(self, step: RollbackStep) -> str | None:
        return self._call(step, "read", lambda: self.registry.alias_version(step.registry_name, self.alias))

    def apply(self, step: RollbackStep) -> None:
        """Move the alias only while it reads `from`. MLflow has no compare-and-set: the
        alias is read again right before the write, after the version tags (3 calls, each
        up to timeout_s with retries), so a move made meanwhile (a person's fix forward) is
        left alone; then the lease and the intent (still pending: not cancelled) are checked.
        A move made inside the read-to-write round trip left is overwritten, and the read
        right after the write reports one made just after."""
        now = self.current(step)
        if now == step.to_version:
            return  # already there: a second apply writes nothing
        self._still_from(step, now)
        self._tag(step, now)
        now = self.current(step)
        if now == step.to_version:
            return
        self._still_from(step, now)
        # Last, right before the write: the lease (a replica paused past it stops here) and the
        # intent still pending (a cancel made while the tags were written moves nothing).
        before_write()
        self._call(step, "move", lambda: self.registry.set_alias(step.registry_name, self.alias, step.to_version))
        try:
            after = self.current(step)
        except ExecutorError:
            return  # set: the read-back (verify) judges it; an unanswered read is no news it is not
        if after != step.to_version:
            raise ExecutorError(False, f"alias '{self.alias}' of registered model '{step.registry_name}' was set to "
                                       f"v{step.to_version} and read right after at v{after}: someone moved it at "
                                       "the same time; left there", reason="changed")

    def _still_from(self, step: RollbackStep, now: str | None) -> None:
        """Refuse unless the alias reads `from` (None: absent, as it was read when decided)."""
        if now != step.from_version:
            raise ExecutorError(False, f"alias '{self.alias}' of registered model '{step.registry_name}' now "
                                       f"{_reads(now)}, not {_reads(step.from_version)} as when the rollback was "
                                       f"decided: someone else moved it; left alone", reason="changed", unmoved=True)

    def _tag(self, step: RollbackStep, previous: str | None) -> None:
        """MLflow keeps no alias history: leave the move's record on the version (tags
        first, then the alias, as RegistrySource.move_alias does). Best effort: the move
        itself is recorded in Vigil's store and audit log."""
        tag = getattr(self.registry, "set_version_tag", None)
        if tag is None:
            return
        at = step.requested_at if step.requested_at is not None else time.time()
        try:
            for field_name, value in (("set_at", format_timestamp(at)), ("previous", previous or ""),
                                      ("set_by", "vigil-rollback")):
                tag(step.registry_name, step.to_version, alias_tag(self.alias, field_name), value)
        except Exception:
            log.warning("could not tag the alias move on the registry",
                        extra={"model": step.model, "version": step.to_version})

    def verify(self, step: RollbackStep) -> Verification:
        serving = self.current(step)
        where = f"alias '{self.alias}' of registered model '{step.registry_name}'"
        if serving == step.to_version:
            return Verification(True, serving, f"{where} points at v{serving}")
        return Verification(False, serving, f"{where} points at v{serving}, expected v{step.to_version}")

    def _call(self, step: RollbackStep, verb: str, fn: Callable[[], T]) -> T:
        """Run one registry call, translating its errors into ExecutorError once, here."""
        what, unmoved = f"{verb} alias '{self.alias}' of registered model '{step.registry_name}'", verb == "read"
        try:
            return fn()
        except SourceUnavailable as e:
            raise ExecutorError(True, f"cannot {what}: {e}", reason="unavailable", unmoved=unmoved) from e
        except ModelNotFound as e:
            raise ExecutorError(False, f"cannot {what}: {e}", reason="not_found", unmoved=unmoved) from e
        except QueryError as e:
            raise ExecutorError(False, f"cannot {what}: MLflow rejected it: {e.reason}", reason="rejected",
                                unmoved=unmoved) from e
        except Exception as e:  # an unexpected error will not go away by itself: a person should look
            raise ExecutorError(False, f"cannot {what}: {type(e).__name__}: {e}", unmoved=unmoved) from e


class ChallengerAliasExecutor:
    """A canary's alias as a layer: the challenger's share of traffic serves the challenger
    alias's version, or the champion's once that alias is gone. Pulling the canary (a step
    from the challenger's version to the champion's) removes the alias; `current` then
    reads the champion alias, so a retry or a restart sees the pull done and moves nothing."""

    name = "mlflow_challenger_alias"

    def __init__(self, registry: ChallengerRegistry, alias: str, champion_alias: str) -> None:
        self.registry, self.alias, self.champion_alias = registry, alias, champion_alias
        self._read = MlflowAliasExecutor(registry, alias)
        self._champion = MlflowAliasExecutor(registry, champion_alias)

    def current(self, step: RollbackStep) -> str | None:
        version = self._read.current(step)
        return version if version is not None else self._champion.current(step)

    def apply(self, step: RollbackStep) -> None:
        version = self._read.current(step)
        if version is None:
            return  # already pulled: a second apply removes nothing
        if version != step.from_version:
            raise ExecutorError(False, f"alias '{self.alias}' of registered model '{step.registry_name}' now points "
                                       f"at v{version}, not v{step.from_version} as when the canary was judged: a "
                                       f"new challenger; left alone", reason="changed")
        before_write()  # the lease and the pull still pending, right before the alias goes
        self._read._call(step, "remove", lambda: self.registry.delete_alias(step.registry_name, self.alias))

    def verify(self, step: RollbackStep) -> Verification:
        version = self._read.current(step)
        where = f"alias '{self.alias}' of registered model '{step.registry_name}'"
        if version is None:
            return Verification(True, self._champion.current(step), f"{where} removed: its traffic serves "
                                                                     f"'{self.champion_alias}'")
        return Verification(False, version, f"{where} still points at v{version}")
