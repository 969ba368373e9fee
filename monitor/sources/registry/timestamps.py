"""Times as the registry records them: RFC 3339 text with a zone, or epoch seconds."""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def _epoch_seconds(value: float) -> float:
    """Epoch seconds, or milliseconds (MLflow's creation_timestamp), microseconds or
    nanoseconds, told apart by size as samples are (monitor/sources/samples.py): seconds
    stay below 1e11 until the year 5138. Read as seconds, a time in ms is the year 58,000
    and never comes (a bundle's deploy never replayed, a version dated nowhere)."""
    if not math.isfinite(value):
        raise ValueError(f"expected finite epoch seconds, got {value!r}")
    size = abs(value)
    return value / 1e9 if size > 1e17 else value / 1e6 if size > 1e14 else value / 1e3 if size > 1e11 else value


def parse_timestamp(value: Any) -> float:
    """RFC 3339 text with a time zone ('2026-11-20T08:00:00Z') or epoch s/ms/us/ns -> epoch s."""
    if isinstance(value, bool):
        raise ValueError("expected an RFC 3339 time such as 2026-11-20T08:00:00Z or epoch seconds")
    if isinstance(value, (int, float)):
        if isinstance(value, int) and abs(value) > 10**20:  # float() of a huge int overflows
            raise ValueError(f"expected epoch seconds, got {value!r}")
        return _epoch_seconds(float(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return _epoch_seconds(number)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expected an RFC 3339 time such as 2026-11-20T08:00:00Z or epoch seconds, got {value!r}"
            ) from None
        if dt.tzinfo is None:
            raise ValueError(f"expected a time zone in {value!r} (e.g. a trailing Z for UTC)")
        return dt.timestamp()
    raise ValueError(f"expected an RFC 3339 time such as 2026-11-20T08:00:00Z or epoch seconds, got {value!r}")


def format_timestamp(at: float) -> str:
    """epoch s -> RFC 3339 UTC with a Z, fractions only as fine as needed (to the microsecond)."""
    dt = datetime.fromtimestamp(at, tz=UTC)
    spec = "seconds" if not dt.microsecond else "milliseconds" if dt.microsecond % 1000 == 0 else "microseconds"
    text = dt.isoformat(timespec=spec)
    return text.replace("+00:00", "Z")

