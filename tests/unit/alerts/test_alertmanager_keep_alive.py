"""The outbox sender asks an Alertmanager receiver whether a keep-alive round is due before
it reads the refs (a query over every incident the receiver has): not on every sender round,
yet often enough that an open alert is re-pushed well before its endsAt."""
from __future__ import annotations

from alerts.receivers.alertmanager import AlertmanagerReceiver


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def test_a_round_is_due_at_start_then_every_half_interval():
    clock = Clock()
    am = AlertmanagerReceiver("am", "http://127.0.0.1:9", object(), resend_every_s=60.0,  # type: ignore[arg-type]
                              clock=clock)
    assert am.keep_alive_due()  # after a start, everything firing goes once
    assert am.keep_alive({}) == 0
    assert not am.keep_alive_due()  # the next sender rounds read nothing
    clock.t += 29.9
    assert not am.keep_alive_due()
    clock.t += 0.1
    assert am.keep_alive_due()
    # an alert re-pushed at most 1.5 x resend_every after its last push: inside its endsAt
    assert 1.5 * am.resend_every_s < am.ttl_s


def test_a_replica_that_cannot_send_keeps_nothing_to_settle():
    """A re-push refused before it was sent (the bearer token unreadable on this replica)
    reached no Alertmanager, so nothing can have been overwritten: it was kept to settle all
    the same, and `settle` posted (and warned) every round, still unsettled an hour later."""
    from alerts.receivers.http import SecretMissing

    clock = Clock()
    am = AlertmanagerReceiver("am", "http://127.0.0.1:9", object(), resend_every_s=60.0,  # type: ignore[arg-type]
                              clock=clock)
    posts: list[int] = []

    def post(batch: list) -> None:  # type: ignore[type-arg]
        posts.append(len(batch))
        raise SecretMissing("bearer token file unreadable on this replica")

    am._post = post  # type: ignore[method-assign]
    alert = {"labels": {"alertname": "x"}, "annotations": {}, "startsAt": "t", "endsAt": "e"}
    assert am.keep_alive({"k": {"firing": True, "alert": alert}}) == 0
    assert not am.unsettled()
    resolved = {"k": {"firing": False, "alert": {**alert, "endsAt": "resolved-at"}}}
    for _ in range(5):
        clock.t += 1
        if am.unsettled():
            am.settle(resolved)
    assert posts == [1], posts


def test_a_settle_that_keeps_failing_stops_once_the_stale_push_ran_out():
    clock = Clock()
    am = AlertmanagerReceiver("am", "http://127.0.0.1:9", object(), resend_every_s=60.0,  # type: ignore[arg-type]
                              clock=clock)
    from alerts.receivers.http import Refused
    am._post = lambda batch: None  # type: ignore[method-assign]
    alert = {"labels": {"alertname": "x"}, "annotations": {}, "startsAt": "t", "endsAt": "e"}
    assert am.keep_alive({"k": {"firing": True, "alert": alert}}) == 1

    def refused(batch: list) -> None:  # type: ignore[type-arg]
        raise Refused("401")

    am._post = refused  # type: ignore[method-assign]
    resolved = {"k": {"firing": False, "alert": {**alert, "endsAt": "resolved-at"}}}
    am.settle(resolved)
    assert am.unsettled()  # retried while the stale push may still show it firing
    clock.t += am.ttl_s
    am.settle(resolved)
    assert not am.unsettled()
