"""Times as the registry records them: RFC 3339 text with a zone, or epoch seconds."""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def parse_timestamp(value: Any) -> float:
    """RFC 3339 text with a time zone ('2026-11-20T08:00:00Z') or epoch seconds -> epoch s."""
    if isinstance(value, bool):
        raise ValueError("expected an RFC 3339 time such as 2026-11-20T08:00:00Z or epoch seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected finite epoch seconds, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
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

