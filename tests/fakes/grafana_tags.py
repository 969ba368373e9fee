"""Annotation tags as Grafana stores and filters them (for tests/fakes/grafana_server.py).

Grafana reads a tag with a colon as a key and a value (pkg/services/tag/model.go
`ParseTagPairs`: `strings.Split(tag, ":")`, so `deploy:m:4` is the key `deploy` and the
value `m`; what follows a second colon is dropped) and stores it joined again
(`JoinTagPairs`). GET /api/annotations?tags=... (pkg/services/annotations/annotationsimpl/
xorm_store.go `Get`) parses the query's tags the same way; a tag without a value matches
every stored tag with that key. Without `matchAny` an annotation is kept when the number of
its tags matching any filter equals the number of filters, so a stored tag that matches a
filter twice over (`incident` and `incident:42` both match the filter `incident`) hides it.
"""
from __future__ import annotations

from collections.abc import Iterable


def parse_tag_pairs(tags: Iterable[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for tag in tags:
        if ":" in tag:
            parts = tag.split(":")
            key, value = parts[0].strip(" "), parts[1].strip(" ")
        else:
            key, value = tag.strip(" "), ""
        if key and (key, value) not in pairs:
            pairs.append((key, value))
    return pairs


def stored_tags(tags: Iterable[str]) -> list[str]:
    """The tags as Grafana keeps and returns them."""
    return [f"{k}:{v}" if v else k for k, v in parse_tag_pairs(tags)]


def tags_match(stored: Iterable[str], query: Iterable[str], *, match_any: bool = False) -> bool:
    filters = parse_tag_pairs(query)
    if not filters:
        return True
    hits = sum(1 for k, v in parse_tag_pairs(stored)
               if any(k == fk and (fv == "" or v == fv) for fk, fv in filters))
    return hits > 0 if match_any else hits == len(filters)
