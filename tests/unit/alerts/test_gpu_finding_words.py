"""A GPU saturation that outlasts the lookback window: the incident's story (merged
findings) knows it began an hour ago, and the GPU cause says 'began at 07:00'. The Slack
line of the finding must tell the same start, not the latest window's cut run ('for 29 min
from 07:30'), which reads as a saturation half as long that began after the latency."""
from __future__ import annotations

import numpy as np

from alerts.wording import Wording, finding_sentence
from correlators.causes import merge_findings
from detectors.base import NoState
from detectors.gpu import GpuDetector, GpuParams, GpuSignal
from detectors.records import Series

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
STEP = 60.0


def _window(start: float, values: np.ndarray) -> list:
    ts = start + STEP * np.arange(len(values))
    det = GpuDetector(GpuParams(GpuSignal("gpu_util_pct", 95, "%"), min_duration=300, step=STEP, model="m"))
    return det.score(NoState(), [Series("gpu", {"Hostname": "n1", "gpu": "0"}, ts, values)], start, float(ts[-1]))


def test_the_finding_line_of_a_saturation_older_than_the_window_tells_the_storys_start() -> None:
    first = _window(T0 - 3600 - 1200, np.r_[np.full(20, 40.0), np.full(10, 99.0)])  # from 07:00
    later = _window(T0 - 1800, np.full(30, 99.0))  # the window 07:30-07:59, saturated throughout
    (story,) = merge_findings(first, later)
    _, sentence = finding_sentence(story.to_dict(), Wording())
    assert "from 2027-01-15 07:00" in sentence, sentence
    assert "for 59 min" in sentence, sentence


def test_a_saturation_inside_the_window_reads_as_before() -> None:
    (f,) = _window(T0 - 1800, np.r_[np.full(20, 40.0), np.full(10, 99.0)])
    _, sentence = finding_sentence(f.to_dict(), Wording())
    assert "for 9 min from 2027-01-15 07:50" in sentence, sentence


def test_a_saturation_that_came_back_is_not_told_as_one_since_the_first() -> None:
    """Saturated 07:00-07:09, then below the limit for 20 min the later window saw, then
    saturated again from 07:40: the story keeps the first onset, but the GPU was not at its
    limit for 49 min from 07:00; the line and the cause tell the run the window saw."""
    from correlators.causes import _saturated_from

    first = _window(T0 - 3600 - 1200, np.r_[np.full(20, 40.0), np.full(10, 99.0)])  # 07:00-07:09
    later = _window(T0 - 2400, np.r_[np.full(20, 40.0), np.full(10, 99.0)])  # 07:20-07:49, 99 from 07:40
    (story,) = merge_findings(first, later)
    _, sentence = finding_sentence(story.to_dict(), Wording())
    assert "for 9 min from 2027-01-15 07:40" in sentence, sentence
    assert _saturated_from(story) == T0 - 1200, "the GPU cause's 'from' is the run the window saw too"
