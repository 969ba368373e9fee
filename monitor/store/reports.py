"""Drift reports and reference profiles at rest, gzip-compressed.

Drift reports: gzip of the HTML (an Evidently report is 4-5 MB of HTML, JSON
and inline script; gzip makes it about 3.6 times smaller, `python -m
benchmarks.store_growth`). Rows written before compression hold plain HTML in `html` and
no `html_gz`, and read back as they are. Reference profiles likewise: `profile_gz`, or
`profile` as written before."""
from __future__ import annotations

import gzip
import logging
import zlib

log = logging.getLogger("vigil.store")

# zlib's default level: a report is written once per incident and read by people, rarely.
_LEVEL = 6


def pack(html: str) -> bytes:
    return gzip.compress(html.encode("utf-8"), compresslevel=_LEVEL, mtime=0)


def unpack(html: str, html_gz: bytes | None) -> str:
    return gzip.decompress(html_gz).decode("utf-8") if html_gz is not None else html


# Reference profiles (1.6 MB per model, written once per version, read back whenever the
# profile cache misses): zlib's fastest level, about 3.5 times smaller on the scale
# benchmark's profiles in 16 ms; decompressing takes about 6 ms.
_PROFILE_LEVEL = 1


def pack_profile(blob: bytes) -> bytes:
    return gzip.compress(blob, compresslevel=_PROFILE_LEVEL, mtime=0)


def unpack_profile(profile: bytes, profile_gz: bytes | None) -> bytes | None:
    """The profile's bytes; None (logged) when its gzip is damaged or cut short: the caller
    then profiles the reference again and overwrites the row. Raised, EOFError/BadGzipFile
    made the model's drift an internal error on every cycle until the row was deleted."""
    if profile_gz is None:
        return profile
    try:
        return gzip.decompress(profile_gz)
    except (OSError, EOFError, zlib.error) as e:
        log.warning("stored profile damaged, profiling the reference again", extra={"error": str(e)})
        return None
