"""Warnings of a Prometheus-compatible answer that the operator said are harmless
(`sources.prometheus.ignore_warnings`). Some Thanos setups put a warning on every answer that
says nothing about this query's data: "No StoreAPIs matched for this query" (a store whose
external labels rule the query out), a store endpoint left in the list long after it was
retired. Read as a partial answer, it would hold every resolve and every automatic rollback
for good. A warning one of these regexes matches in full is not a partial mark: it is logged at
debug and counted (`vigil_prometheus_warnings_ignored_total`); any other keeps the mark."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import re2

from detectors.anchored_regex import anchored, reason
from monitor.sources.prometheus_errors import partial_note

log = logging.getLogger("monitor.sources.prometheus")  # as the warnings it keeps


def check_warning_regex(pattern: str) -> str:
    """`pattern` when RE2 (Go's syntax, as Prometheus and Alertmanager) compiles it, else a
    ValueError naming it: the config loader reports it under its field."""
    try:
        anchored(pattern)
    except re2.error as e:
        raise ValueError(f"invalid regular expression {pattern!r} (RE2 syntax, matched against a whole "
                         f"warning): {reason(pattern, e)}") from None
    except UnicodeEncodeError:
        raise ValueError(f"invalid regular expression {pattern!r}: it holds a lone surrogate") from None
    return pattern


class WarningFilter:
    """Why an answer may be partial, without the warnings `ignore` matches in full; each
    ignored warning is counted through `on_ignored` (the daemon's counter)."""

    def __init__(self, ignore: Sequence[str], url: str, on_ignored: Callable[[float], None] | None = None) -> None:
        # Anchored as Prometheus anchors its label regexes: "store .* down" must not also
        # swallow "store 10.0.3.7 down: ..., No StoreAPIs matched" by a part of it.
        self._ignore = [anchored(p) for p in ignore]
        self.url = url
        self.on_ignored = on_ignored

    def note(self, body: Mapping[str, Any], query: str, answers: int = 1) -> str:
        """`partial_note` of the answer to `query` once the known warnings are taken out;
        `answers`: the queries it answered (a batch's), each counted as if asked alone."""
        warnings = body.get("warnings")
        if self._ignore and warnings and isinstance(warnings, list):
            # (PromQL's own notes are never a partial mark: not counted as ignored either)
            kept = [w for w in warnings if str(w).startswith("PromQL ")
                    or not any(r.fullmatch(str(w)) for r in self._ignore)]
            if len(kept) < len(warnings):
                ignored = [str(w)[:200] for w in warnings if w not in kept]
                log.debug("prometheus answered with warnings sources.prometheus.ignore_warnings matches: "
                          "not a partial answer", extra={"url": self.url, "warnings": "; ".join(ignored),
                                                         "query": query[:200]})
                if self.on_ignored is not None:
                    self.on_ignored(len(ignored) * answers)
                body = {**body, "warnings": kept}
        if note := partial_note(body):  # kept on every Series read from it too
            log.warning("prometheus answered with warnings: the result may be partial",
                        extra={"url": self.url, "warnings": note, "query": query[:200]})
        return note


# Two warnings that share nothing: a regex matching both matches any warning at all.
_UNRELATED = ("fetch series for {job=\"x\"}: store 10.0.3.7:10901: rpc error: code = Unavailable", "")


def ignore_warnings_warnings(ignore: Sequence[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """What `vigil check-config` warns about in `sources.prometheus.ignore_warnings`: a regex
    that matches every warning (`.*`) hides a store that is down too, and then a KPI read at
    half is rolled back on and resolved as if whole."""
    return [(("sources", "prometheus", "ignore_warnings", i),
             f"sources.prometheus.ignore_warnings[{i}]: {p!r} matches every warning, a store that is down "
             "too: no answer is ever read as partial; name the harmless warning instead")
            for i, p in enumerate(ignore) if all(anchored(p).fullmatch(w) for w in _UNRELATED)]
