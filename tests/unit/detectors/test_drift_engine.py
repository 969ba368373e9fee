"""Behaviour of the drift engine a user would notice: verdicts, messages, bad data."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from detectors.drift import (
    DriftDetector,
    DriftParams,
    FeatureSpec,
    ReferenceProfile,
    benjamini_hochberg,
    compare,
    profile_reference,
    render_drift_report,
)
from detectors.records import Finding, FindingKind

FEATURES = [
    FeatureSpec("age"),
    FeatureSpec("income"),
    FeatureSpec("city", "categorical"),
]


def frame(n: int, rng: np.random.Generator, age_shift: float = 0.0, cities=("a", "b", "c")) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40 + age_shift, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "city": rng.choice(list(cities), n),
        }
    )


def run(ref: pd.DataFrame, cur: pd.DataFrame, features=FEATURES, **kw):
    profile = profile_reference(ref, features)
    args = dict(statistic="psi", threshold=0.1, min_samples=100, model="m")
    args.update(kw)
    report = DriftDetector(DriftParams(**args)).assess(profile, cur, 100.0, 200.0)
    return report.findings, report.features


def kinds(findings: list[Finding], kind: FindingKind) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def test_profile_survives_serialisation_with_identical_statistics():
    rng = np.random.default_rng(0)
    ref, cur = frame(5000, rng), frame(3000, rng, age_shift=3)
    profile = profile_reference(ref, FEATURES)
    restored = ReferenceProfile.from_bytes(profile.to_bytes())
    assert restored.n_rows == 5000
    a = compare(profile, cur)
    b = compare(restored, cur)
    assert [x.statistics for x in a] == [x.statistics for x in b]


def test_same_distribution_on_big_samples_raises_no_alarm():
    rng = np.random.default_rng(1)
    findings, drifts = run(frame(50_000, rng), frame(50_000, rng))
    assert kinds(findings, FindingKind.FEATURE_DRIFT) == []
    # p-values on big samples are not what decides: they may well be small here
    assert all(d.enough_data for d in drifts)


@pytest.mark.parametrize("statistic", ["psi", "wasserstein", "ks", "js"])
def test_shifted_feature_is_flagged_ranked_first_with_numbers(statistic):
    rng = np.random.default_rng(2)
    findings, drifts = run(frame(5000, rng), frame(2000, rng, age_shift=8), statistic=statistic)
    drift = kinds(findings, FindingKind.FEATURE_DRIFT)
    assert [f.entity for f in drift] == ["age"]
    f = drift[0]
    assert f.statistic == statistic and f.value > f.threshold == 0.1
    assert f.value == next(d for d in drifts if d.feature == "age").statistics[statistic]
    assert 0 < f.score < 1
    assert f.evidence["rank"] == 1 and f.evidence["top_moved"][0]["feature"] == "age"
    assert f.evidence["n_current"] == 2000 and f.evidence["n_reference"] == 5000
    assert f.message.startswith(f"{statistic} ")
    assert "> 0.10 on age (2,000 current vs 5,000 reference rows)" in f.message
    assert f.window_start == 100.0 and f.window_end == 200.0 and f.onset == 100.0
    assert f.direction is not None and f.direction.value == "up"


def test_too_few_rows_is_one_not_enough_data_finding_never_no_drift():
    """A quiet hour below min_samples: one finding for the window that says how many rows came
    and how many are needed (it was one per feature: 50 features, 50 identical warnings)."""
    rng = np.random.default_rng(3)
    findings, drifts = run(frame(5000, rng), frame(40, rng, age_shift=30))
    (f,) = kinds(findings, FindingKind.NO_DATA)
    assert kinds(findings, FindingKind.FEATURE_DRIFT) == []
    assert f.entity == "drift" and f.value == 40 and f.threshold == 100 and f.model == "m"
    assert f.message == ("not enough data: 40 usable current rows < 100 required (5,000 reference rows); "
                         "drift not assessed on 3 features (age, income, city)")
    assert f.evidence["features_not_assessed"] == ["age", "income", "city"]
    assert not any(d.enough_data for d in drifts)


def test_one_feature_short_of_rows_is_named_alone():
    """A mostly-empty column in a full window: its own finding, the others judged."""
    rng = np.random.default_rng(3)
    cur = frame(2000, rng)
    cur.loc[60:, "income"] = np.nan
    findings, _ = run(frame(5000, rng), cur)
    (f,) = kinds(findings, FindingKind.NO_DATA)
    assert f.entity == "income" and f.value == 60
    assert f.message.startswith("not enough data on income: 60 usable current rows < 100 required")


def test_missing_column_is_a_quality_finding_not_an_exception():
    rng = np.random.default_rng(4)
    findings, drifts = run(frame(3000, rng), frame(1000, rng).drop(columns=["income"]))
    dq = kinds(findings, FindingKind.DATA_QUALITY)
    assert [f.entity for f in dq if f.statistic == "column_missing"] == ["income"]
    assert "income" in dq[0].message
    assert next(d for d in drifts if d.feature == "income").quality["column_missing"] is True


def test_bad_values_are_reported_and_the_rest_still_scored():
    rng = np.random.default_rng(5)
    ref = frame(4000, rng)
    cur = frame(2000, rng).astype({"age": object})
    cur.loc[:99, "age"] = "unknown"  # text in a numeric column
    cur.loc[100:149, "age"] = np.inf
    cur.loc[150:799, "income"] = np.nan  # missing-rate jump: 0 % -> 32.5 %
    cur.loc[:199, "city"] = "zz"  # new category in 10 % of rows
    findings, drifts = run(ref, cur)
    dq = {(f.entity, f.statistic): f for f in kinds(findings, FindingKind.DATA_QUALITY)}
    assert dq[("age", "type_mismatch_share")].value == pytest.approx(100 / 2000)
    assert dq[("age", "nonfinite_share")].value == pytest.approx(50 / 2000)
    miss = dq[("income", "missing_rate")]
    assert miss.value == pytest.approx(650 / 2000) and miss.baseline == 0.0
    new = dq[("city", "new_category_share")]
    assert new.value == pytest.approx(0.1) and "'zz'" in new.message
    age = next(d for d in drifts if d.feature == "age")
    assert age.n_current == 1850 and np.isfinite(age.statistics["ks"])


def test_values_outside_reference_range_are_reported():
    rng = np.random.default_rng(6)
    ref = frame(4000, rng)
    cur = frame(2000, rng)
    cur.loc[:99, "income"] = 1e9
    findings, _ = run(ref, cur)
    oor = [f for f in findings if f.statistic == "out_of_range_share"]
    assert [f.entity for f in oor] == ["income"] and oor[0].value == pytest.approx(0.05, abs=0.005)


def test_integer_categories_that_became_float_are_not_new():
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"tier": rng.integers(1, 4, 2000)})
    cur = pd.DataFrame({"tier": rng.integers(1, 4, 1000).astype(float)})
    cur.loc[:9, "tier"] = np.nan  # pandas keeps ints as float once a value is missing
    (fd,) = compare(profile_reference(ref, [FeatureSpec("tier", "categorical")]), cur)
    assert fd.quality["new_category_count"] == 0
    assert fd.quality["missing_rate_current"] == pytest.approx(0.01)


def test_small_samples_need_significance_so_noise_does_not_page():
    rng = np.random.default_rng(8)
    features = [FeatureSpec(f"x{i}") for i in range(20)]
    ref = pd.DataFrame({f.name: rng.normal(size=5000) for f in features})
    cur = pd.DataFrame({f.name: rng.normal(size=120) for f in features})
    cur["x0"] += 1.5  # one real shift
    findings, drifts = run(ref, cur, features=features, statistic="psi", threshold=0.1)
    by_psi = [d.feature for d in drifts if d.statistics["psi"] > 0.1]
    assert len(by_psi) > 1  # with 120 rows PSI alone would raise false alarms
    flagged = [f.entity for f in kinds(findings, FindingKind.FEATURE_DRIFT)]
    assert flagged == ["x0"]
    assert "significant after BH" in kinds(findings, FindingKind.FEATURE_DRIFT)[0].message


def test_prediction_column_drift_is_prediction_drift():
    rng = np.random.default_rng(9)
    ref = frame(3000, rng).assign(score=rng.beta(2, 5, 3000))
    cur = frame(3000, rng).assign(score=rng.beta(5, 2, 3000))
    feats = FEATURES + [FeatureSpec("score")]
    findings, _ = run(ref, cur, features=feats, prediction_column="score")
    pred = kinds(findings, FindingKind.PREDICTION_DRIFT)
    assert [f.entity for f in pred] == ["score"]
    assert kinds(findings, FindingKind.FEATURE_DRIFT) == []


def test_categorical_feature_under_an_order_statistic_uses_js():
    rng = np.random.default_rng(10)
    ref = frame(3000, rng)
    cur = frame(3000, rng).assign(city=rng.choice(["a", "b", "c"], 3000, p=[0.8, 0.1, 0.1]))
    findings, _ = run(ref, cur, statistic="wasserstein")
    (f,) = kinds(findings, FindingKind.FEATURE_DRIFT)
    assert f.entity == "city" and f.statistic == "js"


def test_findings_survive_json_round_trip():
    rng = np.random.default_rng(11)
    findings, _ = run(frame(3000, rng), frame(1000, rng, age_shift=10, cities=("a", "b", "new")))
    assert findings
    for f in findings:
        assert Finding.from_dict(f.to_dict()).message == f.message


def test_bad_arguments_name_the_field():
    rng = np.random.default_rng(12)
    profile = profile_reference(frame(500, rng), FEATURES)
    with pytest.raises(ValueError, match="statistic"):
        DriftDetector(DriftParams(statistic="chi", threshold=0.1, min_samples=10, model=None)).score(
            profile, frame(200, rng), 0, 1)
    with pytest.raises(ValueError, match="no column"):
        profile_reference(frame(10, rng), [FeatureSpec("nope")])
    with pytest.raises(ValueError, match="type"):
        FeatureSpec("x", "text")  # type: ignore[arg-type]


def test_benjamini_hochberg_step_up():
    assert benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2]), 0.05).tolist() == [True, False, False, False]
    assert benjamini_hochberg(np.array([0.01, 0.02, 0.03]), 0.05).tolist() == [True, True, True]
    # step-up: a larger p-value under its line rescues the smaller ones before it
    assert benjamini_hochberg(np.array([0.02, 0.04, 0.04, 0.04]), 0.05).tolist() == [True] * 4


def test_evidently_report_is_html_for_the_given_columns():
    rng = np.random.default_rng(13)
    ref, cur = frame(800, rng), frame(600, rng, age_shift=5)
    html = render_drift_report(ref, cur, ["age", "city", "missing_col"], max_rows=300)
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:2000].lower()
    assert "age" in html and "city" in html


def test_evidently_report_reads_3_and_3_0_as_one_category_like_the_engine():
    """An integer-coded category column turns float in the window when one value is missing
    (pandas): the report must not show every category as new and call it drift, while the
    engine (category_label) sees the same categories and no drift."""
    rng = np.random.default_rng(21)
    ref = pd.DataFrame({"zone": rng.integers(0, 12, 3000)})
    cur = pd.DataFrame({"zone": rng.integers(0, 12, 3000).astype(float)})
    cur.loc[:5, "zone"] = np.nan
    findings, _ = run(ref, cur, features=[FeatureSpec("zone", "categorical")])
    assert kinds(findings, FindingKind.FEATURE_DRIFT) == []
    html = render_drift_report(ref, cur, ["zone"], max_rows=2000, categorical=["zone"])
    assert "Drift is detected for 0.0% of columns (0 out of 1)" in html


def test_infinite_share_of_the_reference_is_over_all_its_rows_like_the_current_one():
    """20 % of the reference rows are inf; the window has 24 %: a rise, reported against the
    reference's 20 % (not 1,000 / 4,000 finite rows = 25 %, which hid it)."""
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"age": np.where(np.arange(5000) < 1000, np.inf, rng.normal(40, 10, 5000))})
    cur = pd.DataFrame({"age": np.where(np.arange(5000) < 1200, np.inf, rng.normal(40, 10, 5000))})
    findings, _ = run(ref, cur, features=[FeatureSpec("age")])
    (f,) = [f for f in kinds(findings, FindingKind.DATA_QUALITY) if f.statistic == "nonfinite_share"]
    assert f.value == pytest.approx(0.24) and f.baseline == pytest.approx(0.20)
    assert "vs 20.0% in reference" in f.message


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_datetime_and_duration_features_compare_whatever_unit_each_side_kept(unit):
    """Spark writes timestamps in microseconds and pandas reads them so (datetime64[us]);
    a training file written by pandas holds nanoseconds. The same times on both sides are
    no drift, not 1,000x apart ("100 % outside the reference range")."""
    rng = np.random.default_rng(17)
    secs = rng.integers(1_600_000_000, 1_700_000_000, 3000)
    ref = pd.DataFrame({"signup": pd.to_datetime(secs, unit="s").as_unit("ns"),
                        "session": pd.to_timedelta(rng.integers(1, 3600, 3000), unit="s").as_unit("ns")})
    cur = pd.DataFrame({"signup": pd.to_datetime(rng.permutation(secs), unit="s").as_unit(unit),
                        "session": pd.to_timedelta(rng.integers(1, 3600, 3000), unit="s").as_unit(unit)})
    findings, drifts = run(ref, cur, features=[FeatureSpec("signup"), FeatureSpec("session")])
    assert [(f.entity, f.statistic) for f in findings] == []
    assert drifts[0].statistics["ks"] == 0.0


def test_a_value_just_over_the_threshold_does_not_read_as_equal_to_it():
    """psi 0.4104 against a threshold of 0.4074 printed "psi 0.41 > 0.41": the message must
    show the digits that make the value exceed its threshold."""
    rng = np.random.default_rng(2)
    ref, cur = frame(5000, rng), frame(5000, rng, age_shift=4)
    _, drifts = run(ref, cur)
    value = next(fd for fd in drifts if fd.feature == "age").statistics["psi"]
    findings, _ = run(ref, cur, threshold=value * 0.993)
    (f,) = [f for f in kinds(findings, FindingKind.FEATURE_DRIFT) if f.entity == "age"]
    shown_value, shown_threshold = f.message.split(" on ")[0].split()[1::2]
    assert float(shown_value) > float(shown_threshold), f.message


def test_out_of_range_and_new_category_messages_name_their_threshold():
    rng = np.random.default_rng(4)
    ref, cur = frame(3000, rng), frame(3000, rng)
    cur.loc[:59, "age"] = 500.0  # 2 % outside the reference range
    cur.loc[:59, "city"] = "zz"  # a new category in 2 % of rows
    findings, _ = run(ref, cur)
    dq = {f.statistic: f for f in kinds(findings, FindingKind.DATA_QUALITY)}
    assert "> 1.0%" in dq["out_of_range_share"].message
    assert "2.0%" in dq["new_category_share"].message and "> 1.0%" in dq["new_category_share"].message


def test_a_share_just_over_its_threshold_does_not_read_as_equal_to_it():
    """31 new-category rows of 3,000 (1.03 %) printed "in 1.0% of current rows (> 1.0%)"."""
    rng = np.random.default_rng(6)
    ref, cur = frame(3000, rng), frame(3000, rng)
    cur.loc[:30, "city"] = "zz"
    findings, _ = run(ref, cur)
    (f,) = [f for f in kinds(findings, FindingKind.DATA_QUALITY) if f.statistic == "new_category_share"]
    shown = f.message.split(" in ")[1].split("%")[0]
    limit = f.message.split("(> ")[1].split("%")[0]
    assert float(shown) > float(limit), f.message


def test_evidently_report_judges_a_datetime_feature_as_a_number_like_the_engine():
    """A datetime feature, same distribution on both sides (the window read in microseconds,
    the reference in nanoseconds): the engine compares the times as numbers and sees no drift;
    the incident's page spelt every timestamp as a category of its own, found none of them in
    the reference and said 'Drift is detected for 100.0% of columns'."""
    rng = np.random.default_rng(22)

    def times(n: int) -> pd.Series:
        return pd.to_datetime(1.7e9 + rng.uniform(0, 30 * 86400, n), unit="s")

    ref = pd.DataFrame({"signup": times(3000)})
    cur = pd.DataFrame({"signup": times(3000).astype("datetime64[us]")})
    findings, _ = run(ref, cur, features=[FeatureSpec("signup", "numeric")])
    assert kinds(findings, FindingKind.FEATURE_DRIFT) == []
    html = render_drift_report(ref, cur, ["signup"], max_rows=2000)
    assert "Drift is detected for 0.0% of columns (0 out of 1)" in html


def test_evidently_report_renders_a_window_whose_datetime_feature_is_one_batch_date():
    """A batch-scored window: every row carries the same `snapshot` date, the reference spans
    a month of them (the engine calls that drift). Evidently histograms each side with 10 bins
    around a constant value; at nanoseconds (1.8e18) those bins are finer than a float can
    tell apart and numpy raised 'Too many bins for data range': the incident's page was never
    rendered and its link answered 'not rendered yet, try again in a minute' for good."""
    rng = np.random.default_rng(23)
    month = pd.to_datetime(1.7e9 + rng.integers(0, 30, 3000) * 86400.0, unit="s")
    ref = pd.DataFrame({"snapshot": month, "age": rng.normal(40, 10, 3000)})
    cur = pd.DataFrame({"snapshot": pd.Series([pd.Timestamp("2026-12-06")] * 3000),
                        "age": rng.normal(40, 10, 3000)})
    findings, _ = run(ref, cur, features=[FeatureSpec("snapshot"), FeatureSpec("age")])
    assert [f.entity for f in kinds(findings, FindingKind.FEATURE_DRIFT)] == ["snapshot"]
    html = render_drift_report(ref, cur, ["snapshot", "age"], max_rows=2000)
    assert "Drift is detected for 50.0% of columns (1 out of 2)" in html


def test_evidently_report_leaves_out_a_column_it_cannot_draw_and_renders_the_rest():
    """An epoch-microsecond id that is constant in the window cannot be histogrammed either:
    that one column is left out (logged), not the whole page."""
    rng = np.random.default_rng(24)
    ref = pd.DataFrame({"ts_us": 1.7e15 + rng.integers(0, 10**9, 3000), "age": rng.normal(40, 10, 3000)})
    cur = pd.DataFrame({"ts_us": np.full(3000, 1.8e15), "age": rng.normal(40, 10, 3000)})
    html = render_drift_report(ref, cur, ["ts_us", "age"], max_rows=2000)
    assert "Drift is detected for 0.0% of columns (0 out of 1)" in html


@pytest.mark.parametrize("low, high, past", [(1.7e9, 1.7e9 + 86400, 3600.0),  # epoch seconds
                                              (1_000_000.0, 1_234_000.0, 400.0),  # an income
                                              (1.0, 1.0, 1e-4)])  # a constant
def test_an_out_of_range_message_shows_the_current_values_apart_from_the_reference_range(low, high, past):
    """Four significant digits printed an epoch-seconds feature's range and the window's as
    'outside the reference range [1.7e+09, 1.7e+09] (current [1.7e+09, 1.7e+09])': the message
    contradicted itself, and the person reading it could not see how far out the values were."""
    rng = np.random.default_rng(25)
    ref = pd.DataFrame({"x": rng.uniform(low, high, 3000)})
    cur = pd.DataFrame({"x": np.concatenate([rng.uniform(low, high, 2850), np.full(150, high + past)])})
    findings, _ = run(ref, cur, features=[FeatureSpec("x")])
    (f,) = [f for f in findings if f.statistic == "out_of_range_share"]
    shown = re.search(r"reference range \[(\S+), (\S+)\] \(current \[(\S+), (\S+)\]\)", f.message)
    assert shown is not None, f.message
    assert float(shown[4]) > float(shown[2]), f.message  # the window's largest, printed past the reference's


@pytest.mark.parametrize("spelling", ["naive and aware", "dates"])
def test_a_time_feature_of_mixed_zones_or_of_dates_is_compared_not_called_text(spelling):
    """One file wrote `signup` without a zone, the next with UTC: pandas joins the two into a
    column of Timestamp objects, and every value was 'not a number' (100 % type mismatch, the
    feature blind). A parquet date32 column reads as datetime.date objects: the same."""
    rng = np.random.default_rng(26)

    def times(n: int) -> pd.Series:
        return pd.Series(pd.to_datetime(1.7e9 + rng.integers(0, 365, n) * 86400.0, unit="s"))

    ref, cur = times(3000), times(3000)
    if spelling == "dates":
        ref, cur = pd.Series([d.date() for d in ref], dtype=object), pd.Series([d.date() for d in cur], dtype=object)
    else:
        cur = pd.concat([cur[:1500], cur[1500:].dt.tz_localize("UTC")], ignore_index=True)
    assert cur.dtype == object
    findings, (fd,) = run(pd.DataFrame({"signup": ref}), pd.DataFrame({"signup": cur}),
                          features=[FeatureSpec("signup")])
    assert [(f.kind, f.statistic) for f in findings] == []
    assert fd.n_current == 3000 and fd.n_reference == 3000
    html = render_drift_report(pd.DataFrame({"signup": ref}), pd.DataFrame({"signup": cur}), ["signup"],
                               max_rows=2000)
    assert "Drift is detected for 0.0% of columns (0 out of 1)" in html


def test_a_time_feature_written_as_text_in_a_csv_reference_is_compared_as_times():
    """A CSV holds no types: the training export's `signup` is ISO text, the parquet samples'
    are datetimes. Every reference value was 'not a number': 'not enough data on signup: 0 usable
    reference rows' for good, though the file held 3,000 of them."""
    rng = np.random.default_rng(27)

    def times(n: int) -> pd.Series:
        return pd.Series(pd.to_datetime(1.7e9 + rng.integers(0, 365 * 86400, n), unit="s"))

    ref = pd.DataFrame({"signup": times(3000).dt.strftime("%Y-%m-%dT%H:%M:%SZ")})
    findings, (fd,) = run(ref, pd.DataFrame({"signup": times(3000)}), features=[FeatureSpec("signup")])
    assert [(f.kind, f.statistic) for f in findings] == [] and fd.n_reference == 3000


def test_a_missing_rate_just_past_its_limit_is_printed_past_it():
    """No missing values in the reference, 10.04 % in the window: over the +10 pts limit, and
    printed 'missing rate 10.0% vs 0.0% in reference (> +10.0 pts)', which reads as not over."""
    rng = np.random.default_rng(28)
    cur = pd.DataFrame({"age": rng.normal(40, 10, 5000)})
    cur.loc[:501, "age"] = np.nan  # 502 of 5,000 rows: 10.04 %
    findings, _ = run(pd.DataFrame({"age": rng.normal(40, 10, 5000)}), cur, features=[FeatureSpec("age")])
    (f,) = [f for f in findings if f.statistic == "missing_rate"]
    shown = re.search(r"missing rate ([\d.]+)% vs ([\d.]+)% in reference on age \(> \+([\d.]+) pts", f.message)
    assert shown is not None, f.message
    assert float(shown[1]) - float(shown[2]) > float(shown[3]), f.message


def test_evidently_report_judges_by_the_alerts_statistic_and_threshold():
    """A reference of 800 rows: Evidently's own choice there is a KS p-value test, which calls a
    2-point shift of age drift (p < 0.05) while the policy's psi is 0.05, under its 0.1. The page
    linked from the alert said 'Drift is detected for 100.0% of columns' where the alert did not."""
    rng = np.random.default_rng(29)
    ref, cur = pd.DataFrame({"age": rng.normal(40, 10, 800)}), pd.DataFrame({"age": rng.normal(42, 10, 3000)})
    findings, _ = run(ref, cur, features=[FeatureSpec("age")], statistic="psi", threshold=0.1)
    assert kinds(findings, FindingKind.FEATURE_DRIFT) == []
    html = render_drift_report(ref, cur, ["age"], max_rows=2000, statistic="psi", threshold=0.1)
    assert "Drift is detected for 0.0% of columns (0 out of 1)" in html


@pytest.mark.parametrize("statistic", ["psi", "wasserstein", "js"])
def test_a_statistic_exactly_at_the_threshold_is_drift_as_on_evidentlys_page(statistic):
    """Evidently's PSI, Jensen-Shannon and normalised Wasserstein tests (the drift report's
    page) call a column drifted when the statistic is >= the threshold; Vigil flagged only
    above it, so at exactly the threshold the page said "Detected" and Vigil said nothing."""
    ev = pytest.importorskip("evidently.legacy.calculations.stattests.psi")
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(12)
    ref, cur = frame(5000, rng), frame(5000, rng, age_shift=3)
    _, drifts = run(ref, cur, statistic=statistic)
    value = next(fd for fd in drifts if fd.feature == "age").statistics[statistic]
    findings, _ = run(ref, cur, statistic=statistic, threshold=value)
    (f,) = [f for f in kinds(findings, FindingKind.FEATURE_DRIFT) if f.entity == "age"]
    assert f.value == f.threshold == value and ">=" in f.message
    evidently = {"psi": ev._psi, "js": _jensenshannon, "wasserstein": _wasserstein_distance_norm}[statistic]
    own = evidently(ref["age"], cur["age"], ColumnType.Numerical, 0.1)[0]
    assert evidently(ref["age"], cur["age"], ColumnType.Numerical, own)[1]  # Evidently: drift at its threshold


def test_a_small_reference_does_not_make_every_window_out_of_range():
    """Values past the extremes of a 200-row reference are expected in about 1 % of any window
    (2/(n+1)): with 50 unchanged features, 24 out-of-range warnings came every cycle. Values far
    outside it are still reported."""
    rng = np.random.default_rng(31)
    features = [FeatureSpec(f"f{i}") for i in range(50)]
    ref = pd.DataFrame({f.name: rng.normal(0, 1, 200) for f in features})
    cur = pd.DataFrame({f.name: rng.normal(0, 1, 3000) for f in features})
    findings, _ = run(ref, cur, features=features)
    assert [f.entity for f in findings if f.statistic == "out_of_range_share"] == []
    cur.loc[:149, "f7"] = 50.0  # 5 % of the window far outside
    findings, _ = run(ref, cur, features=features)
    assert [f.entity for f in findings if f.statistic == "out_of_range_share"] == ["f7"]


@pytest.mark.parametrize("statistic", ["psi", "js"])
@pytest.mark.parametrize("categories, rows", [(200, 1000), (200, 2000), (1000, 300), (1000, 5000)])
def test_a_many_valued_category_is_not_drift_from_its_sampling_noise_alone(statistic, categories, rows):
    """200 cities, 1,000 rows a window, nothing changed: PSI and JS read 0.23 and 0.18 off the
    cities a window happens to miss or hit twice, and every window warned of drift at 0.1
    (at 1,000 categories, up to 5,000 rows). A real move of the same feature still warns."""
    rng = np.random.default_rng(categories + rows)
    names = np.array([f"c{i}" for i in range(categories)], dtype=object)
    share = 1 / np.arange(1, categories + 1) ** 1.1
    share /= share.sum()
    features = [FeatureSpec("city", "categorical")]
    ref = pd.DataFrame({"city": rng.choice(names, 100_000, p=share)})
    drifted = [bool(kinds(run(ref, pd.DataFrame({"city": rng.choice(names, rows, p=share)}), features=features,
                               statistic=statistic)[0], FindingKind.FEATURE_DRIFT)) for _ in range(5)]
    assert drifted == [False] * 5
    moved = share[::-1]  # the rare cities became the common ones
    findings, _ = run(ref, pd.DataFrame({"city": rng.choice(names, rows, p=moved)}), features=features,
                      statistic=statistic)
    assert [f.entity for f in kinds(findings, FindingKind.FEATURE_DRIFT)] == ["city"]


def test_a_numeric_drift_message_says_how_the_values_moved():
    """'psi 1.37 > 0.10 on age' told a data scientist that age moved, not which way or how far:
    the message now gives the window's mean next to the reference's."""
    rng = np.random.default_rng(32)
    findings, _ = run(frame(5000, rng), frame(2000, rng, age_shift=8))
    (f,) = [f for f in kinds(findings, FindingKind.FEATURE_DRIFT) if f.entity == "age"]
    shown = re.search(r"mean (\S+) vs (\S+) in the reference", f.message)
    assert shown is not None, f.message
    assert float(shown[1]) == pytest.approx(48, abs=1) and float(shown[2]) == pytest.approx(40, abs=1)


def test_a_categorical_drift_names_the_categories_that_moved_with_both_shares():
    """'js 0.16 > 0.10 on city' said nothing of which city: the 1-3 categories whose share moved
    most are named, with the window's share and the reference's."""
    rng = np.random.default_rng(40)
    ref = frame(5000, rng, cities=("Paris", "Lyon", "Nice", "Lille"))
    cur = frame(3000, rng)
    cur["city"] = rng.choice(["Paris", "Lyon", "Nice", "Lille"], 3000, p=[0.12, 0.55, 0.2, 0.13])
    findings, _ = run(ref, cur)
    (f,) = [f for f in kinds(findings, FindingKind.FEATURE_DRIFT) if f.entity == "city"]
    assert "; city: 'Lyon' 55% vs 24% in the reference, 'Paris' 11% vs 26%, 'Lille' 14% vs 26%" in f.message, \
        f.message
    moved = f.evidence["moved_categories"]
    assert [m["category"] for m in moved] == ["Lyon", "Paris", "Lille"]
    assert moved[0]["current_share"] == pytest.approx(0.55, abs=0.02)
    assert moved[0]["reference_share"] == pytest.approx(0.25, abs=0.02)
