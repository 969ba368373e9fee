"""Silences as people make them, from the API, the CLI or Slack: one place that checks
them (a bad one is refused naming the field), stores them and audits who did what."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.lifecycle import IncidentStatus
from alerts.matchers import Matcher, MatcherError, matcher_from_api, parse_matcher
from alerts.silences import Silence, SilenceError, SilenceState, check_new
from monitor.config_types import parse_duration
from monitor.store import silences
from monitor.store.audit_log import retry_audited
from monitor.store.repository import IncidentRow, Store
from monitor.store.tables import locked_row


def parse_matchers(items: Sequence[str | dict[str, Any]], field: str = "matchers") -> tuple[Matcher, ...]:
    """Each item `model="recommender"` or Alertmanager's `{name, value, isRegex, isEqual}`."""
    out = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        try:
            out.append(parse_matcher(item, where) if isinstance(item, str) else matcher_from_api(item, where))
        except MatcherError as e:
            raise SilenceError(e.field, e.reason) from None
    return tuple(out)


def parse_time(value: float | str | None, field: str, default: float | None = None) -> float | None:
    """Epoch seconds or RFC3339 (`2026-11-20T08:00:00Z`)."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # NaN passes every comparison check (false both ways): stored, it was a silence with
        # no end (PostgreSQL sorts NaN above every number: active for ever).
        if not math.isfinite(value):
            raise SilenceError(field, f"expected a finite time (RFC3339 or epoch seconds), got {value!r}")
        return float(value)
    try:
        d = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SilenceError(field, f"expected RFC3339 (2026-11-20T08:00:00Z) or epoch seconds, got {value!r}") from None
    return (d if d.tzinfo else d.replace(tzinfo=dt.UTC)).timestamp()


@dataclass(frozen=True)
class SilenceAsk:
    matchers: Sequence[str | dict[str, Any]]
    comment: str
    created_by: str
    starts_at: float | str | None = None  # default: now
    ends_at: float | str | None = None
    duration: float | str | None = None  # instead of ends_at: '2h', '30m', or seconds


def build(ask: SilenceAsk, now: float) -> Silence:
    matchers = parse_matchers(ask.matchers)
    start = parse_time(ask.starts_at, "starts_at", now)
    assert start is not None
    end = parse_time(ask.ends_at, "ends_at")
    if end is None and ask.duration is None:
        raise SilenceError("ends_at", "expected ends_at or duration (e.g. '2h')")
    if end is not None and ask.duration is not None:
        raise SilenceError("duration", "give ends_at or duration, not both")
    if end is None:
        try:
            length = parse_duration(ask.duration)
        except ValueError as e:
            raise SilenceError("duration", str(e)) from None
        if not math.isfinite(length):
            raise SilenceError("duration", f"expected a finite duration such as '2h', got {ask.duration!r}")
        if length <= 0:
            raise SilenceError("duration", f"expected a duration above 0, such as '2h', got {ask.duration!r}")
        end = start + length
    try:
        check_new(matchers, start, end, ask.created_by, ask.comment, now)
    except SilenceError as e:  # the end was computed from `duration`: that is the field to fix
        if e.field != "ends_at" or ask.duration is None:
            raise
        raise SilenceError("duration", e.reason) from None
    return Silence(None, matchers, start, end, ask.created_by.strip()[:200], ask.comment.strip())


def create(store: Store, ask: SilenceAsk, actor: str, now: float) -> Silence:
    """Check, store and audit a silence (both in one transaction)."""
    made, _ = create_once(store, ask, actor, now, None)
    return made


def create_once(store: Store, ask: SilenceAsk, actor: str, now: float,
                lock: Callable[[Session], object] | None) -> tuple[Silence, bool]:
    """As `create`; with `lock` (a row lock taken first, so two at once run one after the
    other), an active silence with the same matchers and comment is returned instead of a
    second one: (silence, False). A double-clicked Slack button makes one silence."""
    silence = build(ask, now)

    def once() -> tuple[Silence, bool]:
        with store.tx() as s:
            _lock_matched_incidents(s, silence.matchers)
            if lock is not None:
                lock(s)
                same = [x for x in silences.live(s, now) if x.state(now) == SilenceState.ACTIVE
                        and x.matchers == silence.matchers and x.comment == silence.comment]
                if same:
                    return same[0], False
            made = silences.add(s, silence, now).to_silence()
            store.audit_in(s, actor, "silence.create", f"silence:{made.id}",
                           {"matchers": [str(m) for m in made.matchers], "starts_at": made.starts_at,
                            "ends_at": made.ends_at, "created_by": made.created_by, "comment": made.comment},
                           now=now)
        return made, True

    # Another replica's audit entry can take the seq ours was to have: the whole
    # transaction (silence and entry) rolled back, so it is written again, not a 500.
    return retry_audited(once, "create a silence")


def _lock_matched_incidents(s: Session, matchers: Sequence[Matcher]) -> None:
    """Lock the open incidents the silence may match (each open one of the models its `model`
    matchers allow), in id order, before it is written. A cycle writing its plan holds its
    incident's lock from the moment it reads the live silences until it commits: a silence
    that took no lock committed in between, answered, and the cycle's reminder planned without
    it still went out. Now it waits for that write, and every cycle after it sees it."""
    on_model = [m for m in matchers if m.name == "model"]
    rows = s.execute(select(IncidentRow.id, IncidentRow.model)
                     .where(IncidentRow.status == IncidentStatus.OPEN).order_by(IncidentRow.id)).all()
    for incident_id, model in rows:
        if all(m.matches({"model": model}) for m in on_model):
            locked_row(s, IncidentRow, incident_id)


def expire(store: Store, silence_id: int, actor: str, now: float) -> Silence | None:
    """End a silence now (audited when it changed anything); None if there is no such silence.
    The open incidents it may match are locked first, as `create` locks them: a cycle that
    read it as active and is writing its plan commits before the expiry does, so the expiry
    answers after that muted write, never before it (the next cycle plans without it)."""

    def once() -> Silence | None:
        with store.tx() as s:
            found = s.get(silences.SilenceRow, silence_id)
            if found is not None:  # as `create`: a cycle writing a plan muted by it finishes first
                _lock_matched_incidents(s, found.to_silence().matchers)
            got = silences.expire(s, silence_id, now)
            if got is None:
                return None
            silence, changed = got
            if changed:
                store.audit_in(s, actor, "silence.expire", f"silence:{silence_id}",
                               {"matchers": [str(m) for m in silence.matchers], "ends_at": silence.ends_at},
                               now=now)
        return silence

    return retry_audited(once, "expire a silence")  # as in `create`: a lost seq race is written again


def get(store: Store, silence_id: int) -> Silence | None:
    with store.tx() as s:
        row = s.get(silences.SilenceRow, silence_id)
        return None if row is None else row.to_silence()


def listing(store: Store, now: float, state: SilenceState | None = None, limit: int = 50, offset: int = 0,
            max_id: int | None = None) -> tuple[list[Silence], int]:
    with store.tx() as s:
        return silences.page(s, now, state, limit, offset, max_id)
