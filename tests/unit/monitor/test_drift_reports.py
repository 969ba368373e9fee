"""When and where a drift incident's Evidently report is rendered (monitor/cycle/drift_report.py):
off the cycle, in the gap after a sweep, and in a sweep worker not at all (handed to the
daemon with the chunk); rendering and storing it: tests/integration/test_sweep_processes.py."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from monitor.cycle import drift_report
from monitor.cycle.drift_report import DriftReports, ReportAsk

MODEL = SimpleNamespace(name="fraud")


def reports(rendered: list[tuple[int, float]]) -> DriftReports:
    d = DriftReports(None, None, None, 1800.0)  # type: ignore[arg-type]  # nothing is read: _render is replaced

    def render(m, incident_id, columns, serving, t) -> None:  # type: ignore[no-untyped-def]
        rendered.append((incident_id, time.monotonic()))
    d._render = render  # type: ignore[method-assign]
    d.background = True
    return d


def test_a_sweep_worker_hands_its_reports_on_instead_of_rendering_them() -> None:
    rendered: list[tuple[int, float]] = []
    d = reports(rendered)
    d.forwarded = []
    d.save_once(MODEL, 7, ["amount"], "3", 100.0)  # type: ignore[arg-type]
    assert d.take_forwarded() == [ReportAsk("fraud", 7, ["amount"], "3", 100.0)]
    assert d.take_forwarded() == []  # handed on once
    assert d.wait(timeout=5) and rendered == []


def test_a_report_asked_for_during_a_sweep_renders_after_it() -> None:
    rendered: list[tuple[int, float]] = []
    d = reports(rendered)
    with d.sweeping():
        d.save_once(MODEL, 7, ["amount"], "3", 100.0)  # type: ignore[arg-type]
        d.save_once(MODEL, 7, ["amount"], "3", 160.0)  # type: ignore[arg-type]  # the next cycle asks again
        time.sleep(0.3)
        assert rendered == [] and d.pending() == 1
        ended = time.monotonic()
    assert d.wait(timeout=10)
    assert [i for i, _ in rendered] == [7] and rendered[0][1] >= ended
    d.save_once(MODEL, 8, ["amount"], "3", 200.0)  # type: ignore[arg-type]  # no sweep: at once
    assert d.wait(timeout=10) and [i for i, _ in rendered] == [7, 8]


def test_sweeps_back_to_back_do_not_starve_a_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drift_report, "MAX_HOLD_S", 0.2)
    rendered: list[tuple[int, float]] = []
    d = reports(rendered)
    with d.sweeping():
        d.save_once(MODEL, 7, ["amount"], "3", 100.0)  # type: ignore[arg-type]
        assert d.wait(timeout=10), "rendered once it had waited MAX_HOLD_S"
        assert [i for i, _ in rendered] == [7]


def test_closing_drops_the_queued_reports_so_a_stopping_daemon_does_not_wait_for_them() -> None:
    rendered: list[tuple[int, float]] = []
    d = reports(rendered)
    with d.sweeping():
        for incident_id in (7, 8, 9):
            d.save_once(MODEL, incident_id, ["amount"], "3", 100.0)  # type: ignore[arg-type]
        d.close()
    assert d.wait(timeout=5), "nothing left to wait for"
    d.save_once(MODEL, 10, ["amount"], "3", 160.0)  # type: ignore[arg-type]  # a cycle still finishing
    time.sleep(0.2)
    assert rendered == [] and d.pending() == 0


def test_an_integer_coded_categorical_feature_is_reported_as_a_category(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A feature configured as categorical but stored as integers (zone ids) is judged by
    Vigil with category statistics; the incident's Evidently page must judge it the same
    way, not with a numeric Wasserstein test that may say the opposite."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    pd.DataFrame({"zone": rng.integers(0, 12, 3000)}).to_parquet(tmp_path / "train.parquet")
    current = pd.DataFrame({"zone": rng.integers(0, 12, 3000), "_ts": np.arange(3000.0)})
    saved: dict[int, str] = {}
    store = SimpleNamespace(has_drift_report=lambda i: i in saved,
                            save_drift_report=lambda i, html, t: saved.__setitem__(i, html))
    samples = SimpleNamespace(window=lambda m, a, b: current)
    references = SimpleNamespace(reference_frame=lambda m, v, w: pd.read_parquet(tmp_path / "train.parquet"))
    model = SimpleNamespace(name="fraud", features=[SimpleNamespace(name="zone", type="categorical")],
                            prediction_column=None)
    d = DriftReports(store, samples, references, 1800.0)  # type: ignore[arg-type]
    d.save_once(model, 9, ["zone"], "1", 3000.0)  # type: ignore[arg-type]
    html = saved[9]
    assert "Jensen-Shannon" in html and "Wasserstein" not in html


def test_a_report_evidently_cannot_render_says_why_instead_of_not_rendered_yet_for_good(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Evidently raised on the incident's data: nothing was stored, so its link answered 'not
    rendered yet, try again in a minute' for ever, and every cycle of the open incident paid
    for another failing render (seconds of CPU each). Now the page says why, once."""
    import numpy as np
    import pandas as pd

    calls: list[int] = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise ValueError("Too many bins for data range. Cannot create 10 finite-sized bins.")

    monkeypatch.setattr(drift_report, "render_drift_report", failing)
    rng = np.random.default_rng(4)
    current = pd.DataFrame({"amount": rng.normal(size=500), "_ts": np.arange(500.0)})
    saved: dict[int, str] = {}
    store = SimpleNamespace(has_drift_report=lambda i: i in saved,
                            save_drift_report=lambda i, html, t: saved.__setitem__(i, html))
    samples = SimpleNamespace(window=lambda m, a, b: current)
    references = SimpleNamespace(reference_frame=lambda m, v, w: current)
    model = SimpleNamespace(name="fraud", features=[SimpleNamespace(name="amount", type="numeric")],
                            prediction_column=None)
    d = DriftReports(store, samples, references, 1800.0)  # type: ignore[arg-type]
    d.save_once(model, 9, ["amount"], "1", 3000.0)  # type: ignore[arg-type]
    d.save_once(model, 9, ["amount"], "1", 3060.0)  # type: ignore[arg-type]  # the next cycle
    assert "Too many bins for data range" in saved[9] and "could not render" in saved[9]
    assert len(calls) == 1


def test_the_page_is_judged_by_the_models_drift_statistic_and_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import pandas as pd

    asked: dict = {}
    monkeypatch.setattr(drift_report, "render_drift_report", lambda *a, **kw: asked.update(kw) or "<html/>")
    current = pd.DataFrame({"amount": np.arange(500.0), "_ts": np.arange(500.0)})
    saved: dict[int, str] = {}
    store = SimpleNamespace(has_drift_report=lambda i: i in saved,
                            save_drift_report=lambda i, html, t: saved.__setitem__(i, html))
    model = SimpleNamespace(name="fraud", features=[SimpleNamespace(name="amount", type="numeric")],
                            prediction_column=None)
    policy = SimpleNamespace(drift_statistic="wasserstein", drift_warning=0.15)
    d = DriftReports(store, SimpleNamespace(window=lambda m, a, b: current),  # type: ignore[arg-type]
                     SimpleNamespace(reference_frame=lambda m, v, w: current), 1800.0,  # type: ignore[arg-type]
                     policy_for=lambda m: policy)  # type: ignore[arg-type,return-value]
    d.save_once(model, 9, ["amount"], "1", 3000.0)  # type: ignore[arg-type]
    assert (asked["statistic"], asked["threshold"]) == ("wasserstein", 0.15) and saved[9] == "<html/>"
