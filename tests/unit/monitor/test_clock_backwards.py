"""Issue 11, row 7: the clock jumps back 2 h while a critical incident is open.

On the old code the quiet cycles "two hours ago" resolved the incident 119 minutes before
it was opened, and when the clock was right again a second incident paged. The rule (in
the pure alert chain, so replay and live share it): a cycle earlier than the latest time
the model's history holds detects but decides nothing.
"""
from __future__ import annotations

from typing import Any

from alerts.sink import JsonlSink
from tests.helpers_vigil import (
    MODEL,
    ONCALL,
    T0,
    incident_prometheus,
    make_config,
    make_vigil,
    metric_value,
)

TWO_HOURS = 7200.0


def oncall_pages(sink: Any) -> list[dict[str, Any]]:
    """What reached the on-call channel: one line per delivered message."""
    import json

    lines = [json.loads(x) for x in sink.read_text().splitlines()] if sink.exists() else []
    return [x for x in lines if x["payload"].get("channel") == ONCALL]


def test_a_clock_two_hours_back_neither_resolves_early_nor_opens_a_second_incident(tmp_path):
    cfg = make_config(tmp_path)
    sink = tmp_path / "sink.jsonl"
    # Wrong from T0 - 600 on: the hours before it (what a clock two hours back reads) are quiet.
    vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 - 600),
                       notifiers={"sink": JsonlSink(sink, console=False)})

    def cycle(t: float) -> Any:
        vigil.clock.set(t)
        report = vigil.run_cycle(MODEL)
        vigil.deliver(t)
        return report

    cycle(T0)
    assert cycle(T0 + 60).severity == "critical"  # the SLO breached twice in a row
    [opened] = vigil.store.incidents(model=MODEL)
    pages_before = len(oncall_pages(sink))
    assert pages_before == 1

    # NTP (or a VM restore) sets the clock back two hours for three cycles: quiet data there.
    for i in range(3):
        report = cycle(T0 + 120 + 60 * i - TWO_HOURS)
        assert report.step == "held" and report.severity == "critical", report
    [still] = vigil.store.incidents(model=MODEL)
    assert still.status == "open" and still.resolved_at is None, "resolved before it was opened"

    # The clock is right again and the problem persists: the same incident, no second page.
    for i in range(3):
        cycle(T0 + 300 + 60 * i)
    incidents = vigil.store.incidents(model=MODEL)
    assert [r.id for r in incidents] == [opened.id], "a second incident for the same episode"
    assert incidents[0].status == "open" and incidents[0].opened_at == opened.opened_at
    assert len(oncall_pages(sink)) == pages_before, "the on-call was paged again"
    assert metric_value(vigil, "vigil_clock_backwards_total", model=MODEL) == 3


def test_a_resolution_after_a_backwards_jump_is_never_before_the_opening(tmp_path):
    """Problem over, then the clock jumps back: the incident resolves once time has caught up
    with its history, and its resolved_at is never before opened_at."""
    cfg = make_config(tmp_path)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 - 600, bad_until=T0 + 120),
                       notifiers={})
    for t in (T0, T0 + 60):
        vigil.run_cycle(MODEL, t)
    for t in (T0 + 120 - TWO_HOURS, T0 + 180 - TWO_HOURS, T0 + 240 - TWO_HOURS):
        vigil.run_cycle(MODEL, t)
    [row] = vigil.store.incidents(model=MODEL)
    assert row.status == "open"
    t = T0 + 120
    while vigil.store.incidents(model=MODEL)[0].status == "open" and t < T0 + 3 * 3600:
        vigil.run_cycle(MODEL, t)
        t += 60
    [row] = vigil.store.incidents(model=MODEL)
    assert row.status == "resolved" and row.resolved_at is not None and row.resolved_at >= T0 + 120
