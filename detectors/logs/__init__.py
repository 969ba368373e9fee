"""Log anomalies: drain3 templates per service, scored against a normal period.

Fit on a reference (the normal period's lines, and its spans when lines carry a span
id) into a `LogState` that serialises; score the current window against it. Lines are
first masked (ids, numbers, hex, timestamps) with one vectorised pass and deduplicated,
so drain3 only sees the few hundred distinct shapes, not every line; that keeps a
window of thousands of lines well under 100 ms.

What counts as evidence, and why:
- an error template never seen in the baseline (a new failure mode),
- an error template seen before whose rate rose (Poisson tail against the baseline
  rate scaled to the window length, so window lengths may differ),
- a service-wide error burst (all error lines of the service together),
- well-known fatal patterns (OOMKilled, CUDA out of memory, Java OutOfMemoryError,
  stack traces, panics), which are actionable whatever their count,
- a new non-error template (weak evidence: workload changes also create them),
- an expected template that vanished although the span that writes it still ran
  (only when log lines carry a span id and spans are given): vanished.py,
- without spans, a template that stopped while its service kept logging, its runs
  counted by the service's active seconds (ranking evidence only): quiet.py,
- a broken sequence (only when log lines carry a span id): sequences.py.

With `LogWindow.history_start`, the case's own recent lines join the reference (see
views.py). Every finding carries the observed count, the expected count from the
baseline, the window, and sample lines. Scores come from the Poisson surprise
(-log10 p) less the log10 of the number of templates tested, so a service with many
templates does not win by chance.

Modules: `detector.py` (LogDetector, LogState, LogReference, LogWindow), `params.py`,
`shapes.py` (masking, levels, fatal patterns), `templates.py` (drain3 and template
counts), `service_level.py`, `vanished.py`, `quiet.py`, `sequences.py`, `views.py` (how counts are read).
"""
from detectors.logs.detector import LogDetector, LogReference, LogState, LogWindow
from detectors.logs.params import LogParams
from detectors.logs.shapes import FATAL_PATTERNS

__all__ = ["FATAL_PATTERNS", "LogDetector", "LogParams", "LogReference", "LogState", "LogWindow"]
