"""Drift reports at rest: gzip of the HTML (an Evidently report is 4-5 MB of HTML, JSON
and inline script; gzip makes it about 3.6 times smaller, `python -m
benchmarks.store_growth`). Rows written before compression hold plain HTML in `html` and
no `html_gz`, and read back as they are."""
from __future__ import annotations

import gzip

# zlib's default level: a report is written once per incident and read by people, rarely.
_LEVEL = 6


def pack(html: str) -> bytes:
    return gzip.compress(html.encode("utf-8"), compresslevel=_LEVEL, mtime=0)


def unpack(html: str, html_gz: bytes | None) -> str:
    return gzip.decompress(html_gz).decode("utf-8") if html_gz is not None else html
