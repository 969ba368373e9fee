"""Drift not assessed for want of rows (detectors/drift/not_assessed.py) read in Slack as
"*drift* n current 40 against a threshold of 100": a statistic crossing a threshold, the
opposite of what happened. It now says what it is, with the setting that asks for the rows."""
from __future__ import annotations

from typing import Any

from alerts.slack_text import finding_line
from detectors.records import Finding, FindingKind

T = 1_800_000_000.0


def not_assessed(entity: str = "drift", side: str = "current", n: int = 40) -> dict[str, Any]:
    """As the drift detector writes it: value the rows there are, threshold the rows needed;
    entity "drift" and the features listed when several lack rows, else the one feature."""
    several = {"features_not_assessed": ["age", "income", "city"], "features_not_assessed_count": 3}
    return Finding(FindingKind.NO_DATA, entity, float(n), 100.0, T - 1800, T, T - 1800, model="recommender",
                   statistic=f"n_{side}", message=f"not enough data: {n} usable {side} rows < 100 required",
                   evidence={"n_reference": 5000 if side == "current" else n, "n_current": n if side == "current"
                             else 2000, "min_samples": 100, **(several if entity == "drift" else {})}).to_dict()


def test_the_windows_not_assessed_drift_reads_as_not_assessed() -> None:
    line = finding_line(not_assessed())
    first = line.splitlines()[0]
    assert first.startswith("• *drift* not assessed: 40 rows in the window, 100 needed (policy.min_samples)"), first
    assert "threshold" not in first and "n current" not in first, first


def test_one_feature_not_assessed_names_it_and_drift() -> None:
    first = finding_line(not_assessed("user_age", n=1234)).splitlines()[0]
    assert first.startswith("• *user_age* drift not assessed: 1,234 rows in the window, 100 needed "
                            "(policy.min_samples)"), first


def test_a_reference_short_of_rows_says_the_reference() -> None:
    first = finding_line(not_assessed(side="reference", n=12)).splitlines()[0]
    assert "not assessed: 12 rows in the reference, 100 needed (policy.min_samples)" in first, first


def test_other_no_data_findings_keep_their_words() -> None:
    gap = Finding(FindingKind.NO_DATA, "ctr", 0.0, 1.0, T - 1800, T, T, statistic="points",
                  message="no data for ctr: the query returned no series").to_dict()
    assert "not assessed" not in finding_line(gap)
