"""Messages in plain words with units, in the configured time zone, without raw JSON or
epoch floats: what a person on call reads in Slack."""
from __future__ import annotations

from typing import Any

from alerts.slack_blocks import render_incident
from alerts.slack_text import fmt_evidence
from alerts.wording import Wording, clock, finding_sentence

NOW = 1795165200.0  # 2026-11-20 09:00 UTC


def kpi(**over: Any) -> dict[str, Any]:
    f = {"kind": "kpi_drop", "entity": "CTR", "value": -7.3, "threshold": -5.0, "baseline": 0.052,
         "statistic": "kpi_change_pct", "window_start": NOW - 1800, "window_end": NOW, "onset": NOW - 600,
         "score": 0.9, "evidence": {"current": 0.0482, "baseline": 0.052, "change_pct": -7.3}}
    f.update(over)
    return f


def text_of(payload: dict[str, Any]) -> str:
    parts = []
    for b in render_incident(payload)[1]:
        if b["type"] in ("section", "header"):
            parts.append(b["text"]["text"])
        elif b["type"] == "context":
            parts += [e["text"] for e in b["elements"]]
    return "\n".join(parts)


def payload(findings: list[dict[str, Any]], causes: list[dict[str, Any]] | None = None,
            **over: Any) -> dict[str, Any]:
    p = {"incident_id": 3, "model": "recommender", "severity": "critical", "status": "open", "title": "t",
         "opened_at": NOW, "updated_at": NOW, "resolved_at": None, "acknowledged_by": None,
         "findings": findings, "causes": causes or [], "actions": [], "links": {}, "cold_start": False,
         "display": {"time_zone": "UTC", "baseline_s": 3600}}
    p.update(over)
    return p


def test_a_kpi_drop_reads_as_a_sentence_with_its_units_and_the_hour_before():
    entity, sentence = finding_sentence(kpi(), Wording(baseline_s=3600))
    assert f"{entity} {sentence}" == "CTR fell 7.3 % to 0.0482, from 0.052 in the hour before (alerts at -5 %)"
    body = text_of(payload([kpi()]))
    assert "*CTR* fell 7.3 % to 0.0482, from 0.052 in the hour before" in body
    assert "kpi_change_pct" not in body and "value_vs_expected" not in body


def test_p99_latency_carries_its_unit_in_the_slo_and_the_anomaly():
    slo = {"kind": "slo_breach", "entity": "p99_latency", "value": 1.776, "threshold": 0.5,
           "statistic": "p99_latency", "direction": "up", "window_start": NOW - 1800, "window_end": NOW,
           "onset": NOW - 360, "score": 1.0, "evidence": {"unit": "s", "breach_minutes": 6.0, "peak": 1.776}}
    anomaly = {"kind": "metric_anomaly", "entity": "p99_latency", "value": 1.454, "threshold": 0.2817,
               "baseline": 0.2805, "statistic": "value_vs_expected", "window_start": NOW - 60, "window_end": NOW,
               "onset": NOW, "score": 1.0,
               "evidence": {"expected_band": [0.2794, 0.2817], "relative_magnitude": 4.18, "at": NOW}}
    body = text_of(payload([slo, anomaly], display={"units": {"p99_latency": "s"}}))
    assert "*p99_latency* is 1.78 s, above its SLO of 500 ms for 6 min (peak 1.78 s)" in body
    assert "*p99_latency* is 1.45 s, above its expected range 279 ms to 282 ms (expected 280 ms, +418 %)" in body
    binned = {**anomaly, "evidence": {**anomaly["evidence"], "resolution_s": 300.0}}
    body = text_of(payload([binned], display={"units": {"p99_latency": "s"}}))
    assert "*p99_latency* is 1.45 s as a 5 min mean, above its expected range 279 ms to 282 ms" in body
    told = {**binned, "evidence": {**binned["evidence"], "volume_factor": 0.8123}}
    body = text_of(payload([told], display={"units": {"p99_latency": "s"}}))
    assert "(expected 280 ms, +418 %); at this traffic the range is 0.81× its usual width" in body


def test_drift_statistics_are_named_in_words_with_the_value_next_to_the_threshold():
    drift = {"kind": "feature_drift", "entity": "session_length", "value": 0.117, "threshold": 0.1,
             "statistic": "psi", "window_start": NOW - 1800, "window_end": NOW, "onset": NOW, "score": 0.5,
             "evidence": {"n_current": 600, "n_reference": 5000}}
    ks = {**drift, "statistic": "ks", "value": 0.21, "threshold": 0.15}
    body = text_of(payload([drift, ks]))
    assert ("*session_length* population stability index (PSI) 0.117, above the threshold 0.1 "
            "(600 rows against 5,000 in the reference) · last 30 min") in body
    assert "Kolmogorov-Smirnov distance (KS) 0.21, above the threshold 0.15" in body


def test_times_are_in_the_configured_time_zone():
    assert clock(NOW, "Europe/Paris") == "2026-11-20 10:00 CET"
    assert clock(NOW, "America/New_York") == "2026-11-20 04:00 EST"
    body = text_of(payload([kpi()], display={"time_zone": "Europe/Paris"}))
    assert "opened 2026-11-20 10:00 CET" in body and "UTC" not in body


def test_gpu_evidence_is_words_not_json_or_epoch_floats():
    signals = {"gpu-node-1/gpu 0/recsys-api-0:fb_used_ratio": {"from": NOW, "limit": 0.95, "mean": 0.9634,
                                                                 "until": NOW + 360}}
    cause = {"kind": "gpu_saturation", "entity": "gpu-node-1/gpu 0", "score": 0.9, "explanation": "GPU saturated.",
             "evidence": {"gpus": ["gpu-node-1/gpu 0/recsys-api-0"], "signals": signals}}
    body = text_of(payload([kpi()], [cause]))
    assert ("GPU memory (framebuffer) used on gpu-node-1/gpu 0/recsys-api-0: mean 96.3 %, limit 95 %, "
            "from 2026-11-20 09:00 UTC, until 2026-11-20 09:06 UTC") in body
    assert "{" not in body and "1795165200" not in body and "0.9634" not in body


def test_nested_evidence_and_stat_records_are_words():
    text = fmt_evidence({"features": [{"feature": "x", "statistic": "psi", "threshold": 0.1, "value": 0.117}]})
    assert text == "features: x: population stability index (PSI) 0.117 (threshold 0.1)"


def test_a_value_just_over_its_threshold_never_reads_as_equal_to_it() -> None:
    """The Slack/PagerDuty sentence of a drift or data-quality finding just over its
    threshold said 'PSI 0.1, above the threshold 0.1' (and '1 % against a threshold of 1 %'):
    read as a false alarm. The detector's message had been fixed; the sentence people read
    now shows the digits that tell the two apart."""
    from alerts.wording import Wording, finding_sentence

    w = Wording()
    _, drift = finding_sentence({"kind": "feature_drift", "statistic": "psi", "value": 0.1004,
                                 "threshold": 0.1, "entity": "age"}, w)
    assert "PSI) 0.1004, above the threshold 0.1" in drift
    _, share = finding_sentence({"kind": "data_quality", "statistic": "new_category_share",
                                 "value": 0.01004, "threshold": 0.01, "entity": "city"}, w)
    assert "1.004 % against a threshold of 1 %" in share
    _, plain = finding_sentence({"kind": "feature_drift", "statistic": "psi", "value": 0.31,
                                 "threshold": 0.1, "entity": "age"}, w)
    assert "PSI) 0.31, above the threshold 0.1" in plain  # far apart: three digits as before


def test_a_drift_line_says_how_far_the_feature_moved():
    """Slack said PSI 4.04 on `hourly` and nothing of which way or how far it moved."""
    _, drift = finding_sentence({"kind": "feature_drift", "statistic": "psi", "value": 4.04, "threshold": 0.1,
                                 "entity": "hourly", "evidence": {"n_current": 2000, "n_reference": 100000,
                                 "quality": {"mean_reference": 10.02, "mean_current": 14.91}}}, Wording())
    assert "(2,000 rows against 100,000 in the reference; mean 14.91, 10.02 in the reference)" in drift


def test_a_categorical_drift_line_names_the_categories_that_moved():
    """Slack said JS 0.16 on `city` and not which city: the categories whose share moved most."""
    moved = [{"category": "Lyon", "current_share": 0.55, "reference_share": 0.24},
             {"category": "Paris", "current_share": 0.11, "reference_share": 0.26}]
    _, drift = finding_sentence({"kind": "feature_drift", "statistic": "js", "value": 0.16, "threshold": 0.1,
                                 "entity": "city", "evidence": {"n_current": 3000, "n_reference": 5000,
                                                                "moved_categories": moved}}, Wording())
    assert drift.endswith("(3,000 rows against 5,000 in the reference; 'Lyon' 55 % vs 24 % in the reference, "
                          "'Paris' 11 % vs 26 %)"), drift


def test_a_drift_line_says_which_reference_it_was_judged_against():
    _, drift = finding_sentence({"kind": "feature_drift", "statistic": "psi", "value": 0.3, "threshold": 0.1,
                                 "entity": "age", "evidence": {"n_current": 400, "n_reference": 3000, "reference": {
                                     "kind": "rolling", "name": "rolling 7 d of production samples"}}}, Wording())
    assert drift.endswith("(400 rows against 3,000 in the reference, rolling 7 d of production samples)"), drift


def test_a_drift_line_says_the_window_met_the_reference_rows_of_its_time_of_day():
    """A window judged against the reference's rows from its hours of day (a daily cycle)
    read in Slack as if against the whole reference: a person re-ran it against all of it."""
    ev = {"n_current": 1800, "n_reference": 9000, "reference_rows": "11:30-14:00 UTC"}
    _, drift = finding_sentence({"kind": "feature_drift", "statistic": "psi", "value": 0.4, "threshold": 0.1,
                                 "entity": "x", "evidence": ev}, Wording())
    assert "(1,800 rows against 9,000 of the reference's 11:30-14:00 UTC rows)" in drift
    whole = {**ev, "reference_rows": "whole reference: its 11:30-14:00 UTC rows are 40, fewer than min_samples 100"}
    _, drift = finding_sentence({"kind": "feature_drift", "statistic": "psi", "value": 0.4, "threshold": 0.1,
                                 "entity": "x", "evidence": whole}, Wording())
    assert "(1,800 rows against 9,000 in the whole reference: its 11:30-14:00 UTC rows are 40" in drift
