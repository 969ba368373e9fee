"""Trace anomalies: where time is added, where errors start, which calls changed.

Fit on spans of a normal window (a serialisable TraceState), score the spans of the current window.

- Self (exclusive) time: a span's duration minus the time of its children. A caller
  that waits on a slow callee keeps its self time; only the callee's grows. Compared
  per (service, operation) with a Welch t-test on log times, the count of times beyond
  every baseline time, and the ratio of medians (its size: 500x says more than 3x).
- Edge (network) time: a span whose children run in another service is the caller's
  client span; its self time is time on the wire and in the callee's queue, so it is
  measured per edge caller -> callee and never counted as the caller's own work.
  A network fault on one pod slows every edge into it; the correlator uses the graph
  to see which endpoint the slowed edges share. A pair with few reference calls is
  judged against the callee's incoming calls, then every call (at half weight).
- Error status: error spans whose children did not fail are where an error starts
  (the deepest erroring span); their rate per service is compared with the baseline.
- Call structure: per parent (service, operation), how many child calls of each kind
  it makes per run. Calls that stopped (an early return or exception) or appeared (a
  retry loop, a fallback) point at the parent whose code path changed.

The service graph (edges with call counts and median edge/callee times, baseline and
current) is returned for the correlator (`TraceDetector.assess`).

Modules: `detector.py` (TraceDetector, TraceState, TraceWindow, TraceReport), `params.py`,
`spans.py` (spans as one table), `checks.py` (the four checks), `graph.py` (ServiceGraph).
"""
from detectors.traces.detector import TraceDetector, TraceReport, TraceState, TraceWindow
from detectors.traces.graph import EdgeStats, ServiceGraph
from detectors.traces.params import TraceParams

__all__ = ["EdgeStats", "ServiceGraph", "TraceDetector", "TraceParams", "TraceReport", "TraceState", "TraceWindow"]
