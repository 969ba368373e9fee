"""The configured MLflow registry as it was at the replay clock, as far as it can be known.

`vigil replay --config` reads production's registry, which holds today's state: a version
registered at 09:57 would be read as serving at 09:00, and blamed as a deploy there.
MLflow keeps no alias history, so `AsOfRegistry` judges each read at the replay time t:

- a version registered after t does not exist yet (hidden from `list_versions`);
- an alias is walked back through Vigil's own records of its moves (the version tags
  `vigil.alias.<alias>.set_at` / `.previous` a rollback or a replay wrote): a move made
  after t is undone, and the version it came from is what the alias held at t;
- when the walk ends on a version registered after t with no record of what held the
  alias before, what it served at t is unknown: the read raises `AliasUnknownAsOf` (a
  SourceUnavailable: the deploy watch and the canary treat it as an unreadable registry,
  deploy suspects unknown, no all clear), and `notes()` says so for the timeline, instead
  of a deploy made up at the first cycle.

A version registered before t with no record is taken to have held the alias since the
start: the registry as of now, said so in `notes()`.
"""
from __future__ import annotations

from typing import Any

from monitor.clock import Clock
from monitor.sources.errors import SourceUnavailable
from monitor.sources.registry import ModelVersionInfo, alias_record, format_timestamp


class AliasUnknownAsOf(SourceUnavailable):
    """What an alias served at the replay time cannot be known from the registry: to the
    cycle (deploy watch, canary) the registry is unreadable then, as when it is down."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("mlflow", url, reason, whole_source=False)


class AsOfRegistry:
    """A RegistrySource read as of `clock.now()`; everything else is passed through. No
    `all_aliases`: the sweep's one-pass read would be today's, so each cycle reads its own."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner, self.clock = inner, clock
        # (registry name, alias) -> (live version, registered at, latest time it was unknown)
        self._unknown: dict[tuple[str, str], tuple[str, float, float]] = {}
        self._assumed: dict[tuple[str, str], str] = {}  # (name, alias) -> a version taken as serving
        # aliases unknown at their last read: a read in the same unknown span raises a repeat
        # (`said`), logged once, not at each of a week's 5,000 cycles
        self._open: set[tuple[str, str]] = set()

    def __getattr__(self, name: str) -> Any:
        if name in ("all_aliases", "aliases"):  # today's aliases, unwalked: not offered
            raise AttributeError(name)
        return getattr(self.inner, name)

    def alias_version(self, name: str, alias: str) -> str | None:
        """What `alias` pointed at at the replay time (None: it did not exist yet)."""
        t = self.clock.now()
        live = self.inner.alias_version(name, alias)
        # Each undo goes strictly back in time, and a version's one record is undone at most
        # once (revisited, it is older than the move undone): the walk ends.
        version, undone_at = live, float("inf")
        while version is not None:
            info = self.inner.get_version_cached(name, version)
            record = alias_record(info, alias)
            if record is not None and record.set_at >= undone_at:
                # A later move back to it overwrote its tags (rolled back, then forward): it held
                # the alias before the move just undone, set there when is not recorded.
                record = None
            if record is not None and record.set_at > t:  # moved here after t: undo the move
                version, undone_at = record.previous_version, record.set_at
                continue
            if info.created_at > t:
                self._unknown[(name, alias)] = (str(live), float(info.created_at), t)
                e = AliasUnknownAsOf(
                    str(getattr(self.inner, "url", "")),
                    f"replay at {format_timestamp(t)}: '{alias}' of {name} serves v{version} in the registry as of "
                    f"now, registered {format_timestamp(info.created_at)}; what it served before is unknown "
                    "(MLflow keeps no alias history and Vigil recorded no move)")
                e.said = (name, alias) in self._open
                self._open.add((name, alias))
                raise e
            self._open.discard((name, alias))
            if record is None:
                self._assumed.setdefault((name, alias), version)
            return version
        return None

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """The versions registered by the replay time."""
        t = self.clock.now()
        return [v for v in self.inner.list_versions(name) if v.created_at <= t]

    def notes(self) -> list[str]:
        """What the replay could not know of the registry's past, one line per alias."""
        out = []
        for (name, alias), (live, born, last) in sorted(self._unknown.items()):
            out.append(f"{name}: registry as of now ('{alias}' serves v{live}, registered {format_timestamp(born)}); "
                       f"what '{alias}' served up to {format_timestamp(last)} is unknown: no deploy suspects then")
        for (name, alias), version in sorted(self._assumed.items()):
            if (name, alias) not in self._unknown:
                out.append(f"{name}: registry as of now: '{alias}' taken to serve v{version} from the start "
                           "(MLflow keeps no alias history; a move Vigil did not make is not known)")
        return out
