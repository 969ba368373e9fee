"""Slack requests already handled, so a replayed one is refused.

A signed Slack request stays valid for 300 s (its timestamp against our clock), so
whoever copies one could send it again within that window and press the button a second
time. Each accepted request's (timestamp, signature) is kept here, in the store so that
every replica behind a load balancer sees it; the primary key makes "first to insert
wins" atomic on SQLite and PostgreSQL alike. Rows past the window can never match a
valid request again and are deleted as new ones arrive.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import BigInteger, Float, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from monitor.store.tables import Base


class SlackRequestRow(Base):
    __tablename__ = "slack_requests_seen"
    request_ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # X-Slack-Request-Timestamp
    signature: Mapped[str] = mapped_column(String(100), primary_key=True)  # X-Slack-Signature, "v0=<hex>"
    seen_at: Mapped[float] = mapped_column(Float)


def first_sight(tx: Callable[[], AbstractContextManager[Session]], request_ts: int, signature: str, now: float,
                window_s: float) -> bool:
    """True the first time this signed request is seen; False for a replay. `tx` is `Store.tx`."""
    try:
        with tx() as s:
            s.execute(delete(SlackRequestRow).where(SlackRequestRow.request_ts < now - 2 * window_s))
            s.add(SlackRequestRow(request_ts=request_ts, signature=signature[:100], seen_at=now))
        return True
    except IntegrityError:
        return False
