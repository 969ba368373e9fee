"""Stage 7, deliver: drain the outbox, in order per key, each message seen once.

Row by row: claim the head row of a key (monitor/store/outbox.py), call its notifier,
record the outcome under the claim's token. Any number of senders (threads, processes,
replicas on one PostgreSQL) can drain one store: a row is claimed by one of them.

A notifier that raises is treated like a transient failure: the message stays in the
outbox with a back-off, so a crash or an outage delays it but never loses it. A row
whose sender died mid-call (its claim lapsed) may already be out: the notifier is asked
first (`FindsDelivered`), and only a message it cannot find is sent again.

One round at a time per process: the daemon's sender thread and the API (which drains
the outbox right after a rollback) would otherwise race for the same rows; the claim
makes that safe, the lock just saves the losing round its wasted reads.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Collection, Mapping

from alerts.outbox import (
    CLAIM_ENDS,
    DeliveryResult,
    DeliveryStatus,
    FindsDelivered,
    Notifier,
    OutboxMessage,
    OutboxStatus,
)
from alerts.receivers.base import KeepsAlive
from monitor.cycle.send_mute import SendTimeSilences
from monitor.failpoints import failpoint
from monitor.metrics import VigilMetrics
from monitor.receivers import secret_error, secret_unreadable
from monitor.store.outbox import CLAIM_S, Claim
from monitor.store.repository import Store

log = logging.getLogger("vigil.sender")
MAX_BACKOFF_S = 3600.0
MAX_PASSES = 10
# A replica's clock this far from the database's is worth a warning: claims no longer
# depend on it (they are judged by the database's clock), but incident times and retry
# back-offs still do. Logged at most once per SKEW_LOG_EVERY_S.
SKEW_WARN_S = 30.0
SKEW_LOG_EVERY_S = 600.0
NOTE_WAITING_EVERY_S = 60.0


def _notes(notifier: str) -> str:
    """The name under which a notifier's notes and change events rest (`_round`): no notifier's."""
    return f"{notifier}\0notes"


def backoff(attempts: int) -> float:
    return float(min(MAX_BACKOFF_S, 15.0 * (2 ** min(attempts, 12))))


class OutboxSender:
    def __init__(self, store: Store, notifiers: Mapping[str, Notifier], metrics: VigilMetrics,
                 claim_s: float = CLAIM_S, mutes: SendTimeSilences | None = None) -> None:
        self.store, self.notifiers, self.metrics = store, notifiers, metrics
        self.mutes = mutes  # silences checked again just before a message is sent
        for name in notifiers:
            metrics.init_notifier(name)
        self.claim_s = claim_s
        self.lock = threading.Lock()
        self._skew_logged_at = -math.inf
        self._noted: dict[str, float] = {}  # notifier -> when its waiting rows were last noted

    def deliver_due(self, now: float, *, limit: int = 100, database_clock: bool = False, only_own: bool = False,
                    keys: Collection[str] | None = None) -> int:
        """Deliver what is due. One pass takes the oldest open message of each key; the
        next pass the one after it, so several updates of one incident go out in order in
        one call (bounded, so a flood cannot hold the sender forever).

        `database_clock` (a live daemon, where `now` is this host's wall clock): claims are
        judged by the database's clock, shared by every replica, not by `now`.

        `only_own` (a one-off sender, `vigil rollback`): rows of notifiers this process does
        not have are left alone, not claimed and put back with a back-off (which would delay
        the daemon that has them), and no receiver's keep-alive runs from here. `keys`: only
        those messages (and the older ones of their keys, which go first), not a backlog."""
        called = time.monotonic()
        with self.lock:
            started = time.monotonic()
            # `now` was read before waiting for another round to let go of the sender (the
            # API's deliver behind the outbox thread's, tens of seconds with a hanging
            # receiver): the skew is this clock at the database read, not that wait.
            claim_now = self._database_time(now + (started - called)) if database_clock else None
            total = 0
            resting: set[str] = set()  # notifiers (or their notes) that failed in this call: rows wait for the next
            unable: set[str] = set()
            if only_own:
                resting |= {b.notifier for b in self.store.outbox.backlog()} - set(self.notifiers)
                # ... and so are those whose secret is not here (the daemon's routing key): a
                # claim would fail on it and put the daemon's page back by a back-off.
                # So are the notifiers only the daemon has (monitor/notifiers.py LeftToDaemon).
                resting |= {name for name, n in self.notifiers.items()
                            if secret_unreadable(n) or getattr(n, "leave_to_daemon", False)}
            else:
                unable = self._unable_here()
                resting |= unable
            for _ in range(MAX_PASSES):
                resting_before = len(resting)
                n = self._round(now, claim_now, started, limit, resting, keys)
                total += n
                if n == 0 and len(resting) == resting_before:  # nothing went out, and nobody new failed
                    break
            if not only_own:
                self._keep_alive(unable)
            counts = self.store.outbox.counts()
            self.metrics.outbox_pending.set(counts.get(OutboxStatus.PENDING, 0) + counts.get(OutboxStatus.SENDING, 0))
            oldest = self.store.outbox.oldest_open()
            self.metrics.outbox_oldest_age.set(0.0 if oldest is None else max(0.0, now - oldest))
            return total

    def _database_time(self, now: float) -> float:
        """The database's clock now; how far `now` is from it goes to /metrics, and to the log
        when it is over SKEW_WARN_S."""
        db = self.store.outbox.database_now()
        skew = now - db
        self.metrics.clock_skew.set(skew)
        if abs(skew) > SKEW_WARN_S and time.monotonic() - self._skew_logged_at >= SKEW_LOG_EVERY_S:
            self._skew_logged_at = time.monotonic()
            log.warning("this host's clock is %.0f s from the database's (warning over %.0f s); "
                        "outbox claims follow the database, incident times and back-offs this host",
                        skew, SKEW_WARN_S, extra={"clock_skew_s": round(skew, 3)})
        return db

    def _round(self, now: float, claim_now: float | None, started: float, limit: int, resting: set[str],
               keys: Collection[str] | None = None) -> int:
        """One pass over the due heads. A notifier that fails (down, hanging until its
        timeout, rate limited) is not called again in this call: its other rows wait for
        the next, so a hanging Slack costs the pages queued behind it one timeout, not one
        per Slack message. A rollback note or change event (`Head.follows`) goes after the
        pages of the pass, and its failure rests only the notifier's other notes: retried
        for hours, it cost every page of its notifier the pass it came first in."""
        delivered = 0
        heads = self.store.outbox.due(now, limit, skip=resting, claim_now=claim_now, keys=keys)
        for head in sorted(heads, key=lambda h: h.follows):  # stable: oldest first within each
            if head.notifier in resting or (head.follows and _notes(head.notifier) in resting):
                continue  # it failed earlier in this pass
            if head.notifier not in self.notifiers:  # a replica that has it sends it (`_unable_here`)
                resting.add(head.notifier)
                self._note_waiting(head.notifier, f"notifier {head.notifier!r} is not configured in this "
                                                  "process; left to a replica that has it")
                continue
            # `now` is the caller's clock (live or replay) and stays put for the round, so a
            # claim's deadline is written as the round's start + claim_s + the round so far:
            # asked + self.claim_s, no earlier.
            asked = time.monotonic()
            claim = self.store.outbox.claim(head, now, self.claim_s + (asked - started), claim_now)
            if claim is None:
                continue  # another sender has it
            failpoint("before_notifier_call")
            # By the claim's own length from `asked`: judged by the lengthened one (the round's
            # time counted twice), a sender paused past its claim late in a long round sent a
            # row another sender had taken over and sent.
            if time.monotonic() - asked >= self.claim_s:
                # Paused since the claim (a stopped VM, SIGSTOP) for longer than it holds:
                # another sender may have taken the row over and sent it already.
                log.warning("claim lapsed before the notifier was called (this process was paused); "
                            "the message is left to the sender that takes the row over",
                            extra={"notifier": claim.message.notifier, "key": claim.message.key,
                                   "outbox_id": claim.message.id})
                continue
            ends = CLAIM_ENDS.set(asked + self.claim_s)  # each call of the notifier ends by then
            try:
                result = self._held(claim, now) or self._attempt(claim)
            finally:
                CLAIM_ENDS.reset(ends)
            failpoint("after_notifier_call")
            msg = claim.message
            if not self.store.outbox.record(claim, result, now, backoff(msg.attempts), claim_now):
                log.warning("claim lost before its outcome was recorded; the new owner's outcome stands",
                            extra={"notifier": msg.notifier, "key": msg.key, "outbox_id": msg.id})
                continue
            self.metrics.notifications.labels(msg.notifier, str(result.status)).inc()
            if result.status == DeliveryStatus.DELIVERED:
                delivered += 1
            elif result.status != DeliveryStatus.SUPPRESSED:  # a suppressed one is logged by `_held`
                if result.status == DeliveryStatus.RETRY:
                    resting.add(_notes(msg.notifier) if head.follows else msg.notifier)
                log.warning("delivery %s", result.status,
                            extra={"notifier": msg.notifier, "key": msg.key, "error": result.error,
                                   "attempts": claim.token, "uncertain": result.uncertain})
        return delivered

    def _held(self, claim: Claim, now: float) -> DeliveryResult | None:
        """SUPPRESSED when a silence made after the message was queued mutes it (send_mute.py).
        Not for an uncertain claim (it may be out already: its outcome is looked for), and a
        check that fails sends the message: a page lost is worse than one a silence should
        have held."""
        if self.mutes is None or claim.uncertain:
            return None
        try:
            why = self.mutes.holds(claim.message, now)
        except Exception:
            log.exception("silence check at send time failed; sending", extra={"outbox_id": claim.message.id})
            return None
        if why is None:
            return None
        msg = claim.message
        log.info("message not sent: %s", why, extra={"notifier": msg.notifier, "key": msg.key, "outbox_id": msg.id})
        return DeliveryResult(DeliveryStatus.SUPPRESSED, error=why)

    def _unable_here(self) -> set[str]:
        """The notifiers whose secret this process cannot read: their rows are left to a
        replica that can. Claimed here, each failed attempt put the page back by the outbox's
        back-off (15 s doubling to an hour), and the replica that could send it waited: 945 s
        after six grabs. Not claimed, nothing is counted against them; with no replica able,
        they wait named in `last_error`, and `vigil_outbox_oldest_pending_age_seconds` (the
        VigilNotificationStuck rule) still ages with them."""
        unable = set()
        for name, notifier in self.notifiers.items():
            why = secret_error(notifier)
            if why is not None:
                unable.add(name)
                self._note_waiting(name, f"{why}; left to a replica that can read it")
        return unable

    def _note_waiting(self, notifier: str, why: str) -> None:
        """`note_waiting`, at most once a minute per notifier (it is seen in every round)."""
        if time.monotonic() - self._noted.get(notifier, -math.inf) < NOTE_WAITING_EVERY_S:
            return
        self._noted[notifier] = time.monotonic()
        if self.store.outbox.note_waiting(notifier, why):
            log.warning("messages wait for a sender that can send them", extra={"notifier": notifier, "error": why})

    def _keep_alive(self, unable: set[str]) -> None:
        """Re-send the open alerts of receivers whose backend would otherwise time them out.
        The refs are read again after the push: a change another sender delivered meanwhile
        (a resolve) may have reached the backend before the re-send that undid it, and is
        sent again at once (`settle`); one still going out, every round until it is out.
        Not for the notifiers `unable` here: a replica that can send keeps them alive (posting
        without the token failed and warned every round)."""
        for name, notifier in self.notifiers.items():
            if not isinstance(notifier, KeepsAlive) or name in unable:
                continue
            try:
                if notifier.keep_alive_due():
                    sent = notifier.keep_alive(self.store.outbox.refs(name))
                    if sent:
                        log.debug("kept alerts alive", extra={"notifier": name, "alerts": sent})
                if notifier.unsettled():
                    notifier.settle(self.store.outbox.refs(name))
            except Exception:  # the next round tries again; never stops the sender
                log.exception("keep-alive failed", extra={"notifier": name})

    def _attempt(self, claim: Claim) -> DeliveryResult:
        """Send the claimed message, unless an uncertain one is found to be out already."""
        msg = claim.message
        notifier = self.notifiers.get(msg.notifier)
        if notifier is None:
            # Not ours to judge: another process may have this notifier. An uncertain row
            # stays uncertain, so whoever sends it still looks first.
            return DeliveryResult(DeliveryStatus.RETRY, uncertain=claim.uncertain,
                                  error=f"notifier {msg.notifier!r} is not configured in this process")
        if claim.uncertain and isinstance(notifier, FindsDelivered):
            found = self._look(notifier, msg)
            if found is not None:
                return found
        try:
            return notifier.deliver(msg)
        except Exception as e:  # a notifier bug must not lose the message, and may have sent it
            log.exception("notifier raised", extra={"notifier": msg.notifier, "outbox_id": msg.id})
            return DeliveryResult(DeliveryStatus.RETRY, error=f"{type(e).__name__}: {e}", uncertain=True)

    def _look(self, notifier: FindsDelivered, msg: OutboxMessage) -> DeliveryResult | None:
        """The lookup's verdict to record, or None to go on and send."""
        try:
            found = notifier.find_delivered(msg)
        except Exception as e:  # cannot tell: keep it uncertain, never send blindly
            log.exception("delivery lookup raised", extra={"notifier": msg.notifier, "outbox_id": msg.id})
            return DeliveryResult(DeliveryStatus.RETRY, error=f"lookup: {type(e).__name__}: {e}", uncertain=True)
        if found is None:
            return None
        if found.status == DeliveryStatus.DELIVERED:
            log.info("uncertain message was already delivered; not sending it again",
                     extra={"notifier": msg.notifier, "key": msg.key, "outbox_id": msg.id, "ref": found.ref})
            return found
        if found.status == DeliveryStatus.RETRY:
            found.uncertain = True
            return found
        # The backend can never say (a missing scope): a lost alert is worse than a second copy.
        log.warning("cannot look for an uncertain message; sending it again",
                    extra={"notifier": msg.notifier, "key": msg.key, "outbox_id": msg.id, "error": found.error})
        return None
