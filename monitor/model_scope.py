"""Which models an API token may act on: `api.tokens[].models`, shell-style patterns
(`team-a-*`, `fraud-v?`, `[ab]-ranker`; a name without `*`, `?` or `[` is that name
only, as in a receiver's `models`), matched case-sensitively against the whole name.

A write that names a model (rollback, ack, an incident's silence, samples, labels) is
allowed when the model matches one pattern.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class ModelScope:
    """A token's model patterns; an empty tuple is never built (`models` absent: no scope)."""

    patterns: tuple[str, ...]

    def covers(self, model: str) -> bool:
        return any(fnmatchcase(model, p) for p in self.patterns)

    def __str__(self) -> str:
        return ", ".join(self.patterns)


def scope_of(patterns: Sequence[str] | None) -> ModelScope | None:
    return None if patterns is None else ModelScope(tuple(patterns))
