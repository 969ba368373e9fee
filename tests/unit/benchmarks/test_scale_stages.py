"""The scale benchmark's stage clock reports CPU next to wall time: on a shared machine a
stage that waits (for the GIL, a core, a server) must not read as one that computes."""
from __future__ import annotations

import time

from benchmarks.scale_stages import StageClock


def test_a_waiting_stage_shows_wall_time_but_no_cpu_and_a_busy_one_shows_both() -> None:
    clock = StageClock()
    with clock.timing("waits"):
        time.sleep(0.2)
    with clock.timing("computes"):
        began = time.thread_time()
        while time.thread_time() - began < 0.1:
            pass
    assert clock.seconds["waits"] >= 0.2 and clock.cpu["waits"] < 0.05
    assert clock.cpu["computes"] >= 0.1
    assert "waits=0.2s(cpu 0.0s)/1" in clock.summary()
    clock.reset()
    assert not clock.cpu and not clock.seconds
