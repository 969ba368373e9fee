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
