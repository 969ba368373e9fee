"""Alertmanager: Vigil's incidents pushed to `POST /api/v2/alerts`, for teams whose pages
all go through an Alertmanager (its routes, silences, inhibitions and receivers apply).

One alert per incident, labelled `alertname="VigilIncident"`, `model`, `severity`,
`entity` (the top cause's), `vigil_incident` (the dedup key) and any configured static
labels; annotations `summary`, `description`, `findings` and one `<name>_url` per link.
An open incident's alert is pushed with `endsAt = now + ttl` and pushed again every
`resend_every` while it stays open (`keep_alive`, from the outbox sender), as Prometheus
does, so Alertmanager never times it out while Vigil still sees the problem; the
resolution pushes `endsAt` = the resolution time. When an update changes the labels (an
escalation changes `severity`), the alert under the old labels is ended in the same push,
or Alertmanager would show both; a change that pages no one (`held`: a member whose group's
alert pages for it) keeps the labels it had, and only its annotations change. A push is
idempotent: the same labels are one alert.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.base import ALL, RECEIVER_ROUTE, Receiving
from alerts.receivers.http import HttpCaller, Refused, SecretMissing, SecretSource, Transient, run_delivery
from alerts.receivers.mapping import HELD, alertmanager_alert, ended, iso, sent_ref
from alerts.receivers.record import as_sent, state_of

log = logging.getLogger("vigil.receivers.alertmanager")


class AlertmanagerReceiver:
    route = RECEIVER_ROUTE

    def __init__(self, name: str, url: str, http: HttpCaller, *, resend_every_s: float = 60.0,
                 labels: dict[str, str] | None = None, bearer_token: SecretSource | None = None,
                 receiving: Receiving = ALL, clock: Callable[[], float] = time.time) -> None:
        self.receiving = receiving
        self.name, self.http, self.clock = name, http, clock
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.resend_every_s = resend_every_s
        # Prometheus's rule: an alert sent every resend_delay ends 4 of them later unless re-sent.
        self.ttl_s = 4 * resend_every_s
        self.labels = labels or {}
        self.bearer_token = bearer_token
        self._pushed: dict[str, float] = {}  # outbox key -> when its alert was last pushed (this process)
        self._last_round = float("-inf")  # the first round after a start re-pushes everything firing
        self._kept: dict[str, tuple[dict[str, Any], float]] = {}  # key -> the ref's alert re-pushed, when

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        if message.kind != MessageKind.INCIDENT:
            return DeliveryResult(DeliveryStatus.DELIVERED, ref=message.ref)  # incidents only
        return run_delivery(lambda: self._send(message.key, as_sent(message.payload, message.ref), message.ref))

    def _send(self, key: str, record: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any]:
        now = self.clock()
        alert = alertmanager_alert(record, now=now, ttl_s=self.ttl_s, extra_labels=self.labels)
        batch = [alert]
        before = (ref or {}).get("alert")
        if record.get(HELD) and isinstance(before, dict) and isinstance(before.get("labels"), dict):
            # A change that pages no one (its group's alert pages for a held member's escalation):
            # labels are the alert's identity, so new ones (severity=critical) were a second
            # alert, routed to the on-call beside the group's. The annotations carry the change.
            alert = {**alert, "labels": before["labels"]}
            batch = [alert]
        if isinstance(before, dict) and before.get("labels") != alert["labels"]:
            batch.append(ended(before, now))
        self._post(batch)
        self._pushed[key] = now
        firing = state_of(record) != "resolved"
        log.info("alertmanager push accepted", extra={"receiver": self.name, "alert": record["dedup_key"],
                                                      "firing": firing, "ended_old_labels": len(batch) > 1})
        return {**sent_ref(record, ref), "alert": alert, "firing": firing}

    def keep_alive_due(self) -> bool:
        # Half the interval: an alert waits at most 1.5 x resend_every for its re-push, well
        # inside its endsAt (4 x resend_every).
        return self.clock() - self._last_round >= self.resend_every_s / 2

    def keep_alive(self, refs: Mapping[str, dict[str, Any]]) -> int:
        """Re-push every firing alert last pushed `resend_every` ago or more (or never by this
        process: after a restart they all go once), with a new endsAt."""
        now = self.clock()
        self._last_round = now
        due = {k: r for k, r in refs.items() if r.get("firing") and isinstance(r.get("alert"), dict)
               and now - self._pushed.get(k, float("-inf")) >= self.resend_every_s}
        if not due:
            return 0
        batch = [{**r["alert"], "endsAt": iso(now + self.ttl_s)} for r in due.values()]
        # Any of these may reach Alertmanager after a resolve (or an escalation's new labels)
        # another replica delivered since the refs were read: `settle` puts that state back.
        # Kept once sent, or maybe sent (a transient failure: a timeout may have landed); one
        # refused before sending (no token here) reached nothing, and settling it retried forever.
        kept = {k: (r["alert"], now) for k, r in due.items()}
        try:
            self._post(batch)
        except (Transient, Refused, SecretMissing) as e:  # the next round tries again; the alerts stay in the refs
            if isinstance(e, Transient):
                self._kept.update(kept)
            log.warning("alertmanager re-push failed", extra={"receiver": self.name, "error": str(e),
                                                              "alerts": len(batch)})
            return 0
        self._kept.update(kept)
        for k in due:
            self._pushed[k] = now
        return len(batch)

    def unsettled(self) -> bool:
        return bool(self._kept)

    def settle(self, refs: Mapping[str, dict[str, Any]]) -> int:
        """A keep-alive push read its refs, then pushed (retried through a 503, say); a replica
        that delivered the resolve in between had its `endsAt` overwritten by the stale firing
        alert's, 4 x resend_every ahead: Alertmanager showed the resolved incident firing again
        and notified it twice. `refs` is read after the push: a key whose ref changed gets its
        delivered state pushed again now (an escalation's old labels ended too); a key with a
        change still going out (absent from `refs`) is looked at again next round, until the
        stale push would have run out anyway."""
        now = self.clock()
        batch: list[dict[str, Any]] = []
        settled = {}
        for key, (pushed, at) in self._kept.items():
            after = refs.get(key)
            if after is None and now - at < self.ttl_s:
                continue  # its change is in flight: it may have reached Alertmanager before the push
            settled[key] = (pushed, at)
            alert = after.get("alert") if after is not None else None
            if after is None or not isinstance(alert, dict) or alert == pushed:
                continue  # unchanged since the push read it: nothing was overwritten
            batch.append(alert if not after.get("firing") else {**alert, "endsAt": iso(now + self.ttl_s)})
            if alert.get("labels") != pushed.get("labels"):
                batch.append(ended(pushed, now))
        if batch:
            try:
                self._post(batch)
            except (Transient, Refused, SecretMissing) as e:  # the next round tries again ...
                log.warning("alertmanager: a change delivered during a re-push could not be pushed again",
                            extra={"receiver": self.name, "error": str(e), "alerts": len(batch)})
                # ... until the stale push would have run out anyway: then nothing is left to undo
                for key in [k for k, (_, at) in self._kept.items() if now - at >= self.ttl_s]:
                    del self._kept[key]
                return 0
            log.info("alertmanager: a change delivered during a re-push pushed again",
                     extra={"receiver": self.name, "alerts": len(batch)})
        for key in settled:
            del self._kept[key]
        return len(batch)

    def _post(self, batch: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {self.bearer_token.read()}"} if self.bearer_token else {}
        self.http.post(self.endpoint, batch, headers)
