"""The detector contract: fit on a reference, score the current window.

Every detector in this package has the same shape (scikit-learn's, see STYLE.md):

    detector = KpiDetector(KpiParams(kpi="ctr", ...))   # parameters: one frozen dataclass, no work done
    state = detector.fit(reference, start, end)          # learn from a reference period
    blob = state.to_dict()                               # JSON-serialisable: store it
    state = KpiState.from_dict(blob)                     # ... and restart without a cold start
    findings = detector.score(state, window, start, end) # -> list[Finding], always

- `fit(reference, start, end)`: the reference (training data, a normal period, a
  baseline window) and the period it covers. Rules with a fixed threshold (SLO, GPU)
  learn nothing and return `NoState`.
- `score(state, window, start, end)`: the current window and its bounds. Always a
  list of findings (empty when all is well). Outputs beside the findings (per-feature
  drift statistics, the service graph, KPI levels) come from a second method that
  returns a dataclass holding the findings too, so nothing is computed twice.
- Online detectors (the metric anomaly detector) also remember what they scored: their
  `score` advances the state in place, and the caller stores it again.
- No clock, no I/O: time comes in as `start`/`end`, data as arguments.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from detectors.records import Finding


@runtime_checkable
class FittedState(Protocol):
    """What `fit` returns: small, explicit, and round-trips through JSON."""

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self: ...


R_contra = TypeVar("R_contra", contravariant=True)
W_contra = TypeVar("W_contra", contravariant=True)
S = TypeVar("S", bound=FittedState)


@runtime_checkable
class Detector(Protocol[R_contra, W_contra, S]):
    """fit(reference, start, end) -> state; score(state, window, start, end) -> findings."""

    def fit(self, reference: R_contra, start: float, end: float) -> S: ...

    def score(self, state: S, window: W_contra, start: float, end: float) -> list[Finding]: ...


@dataclass(frozen=True)
class NoState:
    """The fitted state of a rule with a fixed threshold: nothing is learnt from data."""

    def to_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NoState:
        return cls()


def check_window(who: str, start: float, end: float) -> None:
    """A window must end after it starts; says which detector was called wrongly."""
    if end <= start:
        raise ValueError(f"{who}: window end ({end}) must be after window start ({start})")
