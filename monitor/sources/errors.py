"""Errors every source client raises, so the cycle treats all sources alike."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from monitor.redact import redact


class SourceUnavailable(Exception):
    """The backend could not be reached or kept failing after retries.

    The cycle records this as the source being down (never as "all clear").
    `whole_source`: every other request would fail the same way (no connection, bad
    credentials), not only this one (a query that timed out, a 5xx it drew).
    """

    def __init__(self, source: str, url: str, reason: str, *, whole_source: bool = True) -> None:
        # Redacted once here: this message reaches logs, findings, Slack and /readyz.
        self.source, self.url, self.reason = source, redact(url), redact(reason)
        self.whole_source = whole_source
        # Already logged: a repeat of a failure said once (a replay's unknown alias, read every
        # cycle), which a caller logs again only at debug level.
        self.said = False
        super().__init__(f"{source} at {self.url} is unavailable: {self.reason}")


def source_down(results: Sequence[object]) -> SourceUnavailable | None:
    """The one unreachable-source error every result of a batch is, else None: a batch
    that found the whole source down (asking again would wait out the same retries)."""
    first = results[0] if results else None
    if isinstance(first, SourceUnavailable) and first.whole_source and all(r is first for r in results):
        return first
    return None


class QueryError(Exception):
    """The backend rejected the query itself (HTTP 400): retrying will not help."""

    def __init__(self, source: str, query: str, reason: str) -> None:
        self.source, self.query, self.reason = source, query, reason
        super().__init__(f"{source} rejected query {query!r}: {reason}")


class SourceStatus(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass
class SourceState:
    """What /readyz shows per source."""

    name: str
    status: SourceStatus
    url: str
    detail: str = ""
    checked_at: float | None = None

    def __post_init__(self) -> None:
        # /readyz needs no token: a URL's password or an error quoting it never gets there.
        self.url, self.detail = redact(self.url), redact(self.detail)
