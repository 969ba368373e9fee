"""No feature samples in a window: a broken sample pipeline, or a model nobody called.
The model's own KPIs and SLOs tell the two apart: when every one of them is 0/0 (no
requests) throughout the window, no samples were to be expected, and the missing samples
are a blind line (no incident opens, an open one is not resolved), not a no-data page
every idle night. With traffic, or with nothing to tell (no KPI or SLO), it stays a
no-data finding."""
from __future__ import annotations

import dataclasses

import numpy as np

from detectors.records import FindingKind
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
    write_reference,
)

IDLE = "samples: none in the window, and none expected"


def _vigil(tmp_path, curves, prometheus=StubPrometheus, **over):
    write_reference(tmp_path, np.random.default_rng(7))
    cfg = make_config(tmp_path, models=[model_config(
        features=["user_age"], prediction_column="score", reference={"path": "train.parquet"},
        samples={"path": "samples/", "timestamp_column": "timestamp"}, **over)])
    return make_vigil(cfg, prometheus=prometheus(curves), registry=serving_registry(), notifiers={})


def _no_data_about_samples(report):
    return [f for f in report.findings if f.kind is FindingKind.NO_DATA and f.entity == "samples"]


def _idle(ts):
    return np.full(len(ts), np.nan)  # 0/0 on every step: no request at all


def test_no_samples_while_the_model_served_nothing_pages_nobody(tmp_path):
    vigil = _vigil(tmp_path, {CTR_QUERY: _idle, P99_QUERY: _idle})

    report = vigil.run_cycle(MODEL, T0)

    assert not _no_data_about_samples(report), [f.message for f in report.findings]
    assert report.incident_id is None, [f.message for f in report.findings]
    (line,) = [b for b in report.blind if b.startswith(IDLE)]
    assert "ctr" in line and "p99_latency" in line, line  # which signals said the model was idle


def test_no_samples_while_the_model_serves_is_a_broken_pipeline(tmp_path):
    vigil = _vigil(tmp_path, {CTR_QUERY: lambda ts: np.full(len(ts), 0.05), P99_QUERY: _idle})

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = _no_data_about_samples(report)
    assert "no feature samples in the window" in gap.message
    assert not [b for b in report.blind if b.startswith(IDLE)]


def test_no_samples_and_no_signal_to_tell_idle_from_broken_stays_a_no_data_finding(tmp_path):
    vigil = _vigil(tmp_path, {}, kpis=[], slos=[])

    report = vigil.run_cycle(MODEL, T0)

    assert _no_data_about_samples(report), report.blind


def test_an_idle_night_holds_an_open_incident_open(tmp_path):
    # The sample pipeline broke while the model served (an incident opens); then the night.
    serving = {"on": True}
    ctr = lambda ts: np.full(len(ts), 0.05) if serving["on"] else _idle(ts)  # noqa: E731
    vigil = _vigil(tmp_path, {CTR_QUERY: ctr, P99_QUERY: _idle})
    opened = vigil.run_cycle(MODEL, T0)
    assert opened.incident_id is not None and _no_data_about_samples(opened)

    serving["on"] = False
    for i in range(1, 5):
        report = vigil.run_cycle(MODEL, T0 + 60 * i)
        assert any(b.startswith(IDLE) for b in report.blind), report.blind
        assert report.step != "resolve"

    assert vigil.store.incident(opened.incident_id).status == "open"


class _TrafficStoreDown(StubPrometheus):
    """CTR's answer misses a store (Thanos `warnings`): what it holds is 0/0 throughout."""

    def query_range(self, query, start, end, step=None, *, name=None):
        found = super().query_range(query, start, end, step, name=name)
        why = "store 10.0.3.7:10901: connection refused" if query == CTR_QUERY else ""
        return [dataclasses.replace(s, partial=why) for s in found]


def test_an_idle_night_read_from_a_partial_answer_does_not_say_the_model_served_nothing(tmp_path):
    """The store that did not answer may hold every request of the window: the samples'
    line says CTR's 0/0 was read from a partial answer, not flatly that nobody called it."""
    vigil = _vigil(tmp_path, {CTR_QUERY: _idle, P99_QUERY: _idle}, _TrafficStoreDown)

    report = vigil.run_cycle(MODEL, T0)

    assert report.incident_id is None, [f.message for f in report.findings]  # no page on an idle night
    (line,) = [b for b in report.blind if b.startswith(IDLE)]
    assert "p99_latency served no request" in line and "ctr read 0/0 from a partial answer" in line, line
    assert not [b for b in report.blind if b.startswith("ctr: no traffic")], report.blind
