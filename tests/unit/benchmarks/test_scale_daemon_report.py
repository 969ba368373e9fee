"""The daemon scale benchmark's reading of replica logs: sweeps due on the job's grid,
misses by reason, cycles per owned model, the longest gap between outbox rounds."""
from __future__ import annotations

import json

from benchmarks.scale_daemon_report import Samples, Window, due_in, figures, parse_line, quiet_moment


def _line(ts: float, msg: str, **fields: object):
    import datetime as dt
    iso = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line = parse_line(json.dumps({"ts": iso, "level": "INFO", "msg": msg, **fields}).encode())
    assert line is not None
    return line


def test_due_counts_the_grid_inside_the_window():
    assert due_in([100.0, 160.0], 60.0, 130.0, 430.0) == 5  # 160, 220, 280, 340, 400
    assert due_in([], 60.0, 0.0, 600.0) == 0


def test_quiet_moment_is_half_way_between_sweeps():
    t = quiet_moment([10.0], 60.0, 0.0)
    assert abs(t - 40.0) < 0.5


def test_a_missed_sweep_and_a_model_that_never_ran_show():
    lines = [
        _line(1000.0 + 60 * k + 5, "sweep done", models=2, cycles=2, duration_s=5.0, lag_s=0.0) for k in range(3)
    ] + [
        _line(1000.0 + 60 * 3 + 1, "scheduled run missed", job="sweep", reason="busy", lag_s=1.0),
    ] + [
        _line(1000.0 + 60 * k + 3, "cycle done", model="a", t=5000.0 + 60 * k) for k in range(3)
    ] + [_line(1000.0 + 5 * k, "outbox round") for k in range(0, 20)] + [_line(1200.0, "outbox round")]
    window = Window(990.0, 1230.0, 60.0)
    outbox = [(1000.0, 2), (1001.0, 3), (1002.0, 0), (1100.0, 7), (1300.0, 50)]
    f = figures("A", lines, window, ["a", "b"], leased=False, cycle_started_at=lambda t: t - 4000.0,
                samples=Samples(outbox=outbox, peak_rss_kb={1: 2048}), pids=[1])
    assert (f.due, f.ran, f.missed) == (4, 3, {"busy": 1})
    assert f.cycles == [0, 3] and f.never == 1  # b is owned and never ran
    assert f.outbox_max_gap_s == 105.0  # 1095 -> 1200
    assert f.outbox_max_pending == 7  # the sample after the window does not count
    assert f.outbox_longest_pending_s == 1.0  # 1000 -> 1001, drained at 1002
    assert f.peak_rss_mb == 2.0
    assert f.cut_short == 0 and "0 sweeps ran fewer cycles than models" in f.detail()
    assert f.summary().startswith("replica=A models_owned=2 due=4 ran=3 missed=1 min_cycles_per_model=0 ")


def test_with_leases_a_replica_owns_what_it_acquired_and_did_not_give_back():
    lines = [_line(1.0, "model ownership changed", acquired=["a", "b", "c"], released=[], lost=[]),
             _line(2.0, "model ownership changed", acquired=[], released=["b"], lost=["c"])]
    f = figures("B", lines, Window(0.0, 10.0, 60.0), ["a", "b", "c"], leased=True, cycle_started_at=lambda t: t,
                samples=Samples(), pids=[])
    assert f.models_owned == 1
