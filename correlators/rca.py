"""Multimodal root-cause ranking: metrics, logs and traces over the service graph.

Why this ranking points at the cause rather than at the loudest victim:

1. Each finding arrives with a score in [0, 1] that already discounts chance (the
   detectors correct their p-values for the number of things they tested).
2. Latency counts where it is added. Trace findings are on self time, so a caller
   waiting on a slow callee carries no latency evidence of its own. Time spent
   between a caller's client span and the callee's server span (network, queue)
   is shared out by the graph: a fault on one pod slows every edge into it, so the
   callee gets credit in proportion to the share of its incoming edges that slowed,
   and a caller in proportion to the share of its outgoing edges that slowed.
3. Errors count where they start. When a service and one of its callees both show
   new errors, the caller's errors are most likely the callee's failures passed up
   the chain, so the caller's error evidence is halved (once per level), but only
   when the caller's errors began with the callee's failure (within 60 s): errors
   that began minutes after a callee started failing have a cause of their own. A
   callee whose code path broke silently (a log template its operation always wrote
   stopped, or a line that always followed another in a span no longer does) counts
   as failing too. An error line that names another known service
   ("No instances available for X", a URL with X's host) is the client reporting a
   failed call: half its weight goes to the named service(s). The deepest erroring
   span, when spans carry a status, is scored by the trace detector.
4. A service's evidence per modality is its strongest finding (findings of one
   modality on one service are correlated: CPU usage and CPU rate, p90/p95/p99, a
   new error template and the burst it makes), and the modalities combine by
   noisy-OR: two independent modalities agreeing is stronger than either.
5. Anomalies travel up the call graph, not down: a caller's latency, errors or lost
   availability (metrics whose name says so, detectors/metric_meaning.py) are most
   likely its callee's when a callee shows an anomaly of its own (latency, errors,
   availability or saturation, any modality) at least `explain_share` as strong and no
   later; the caller's such evidence then counts `explained_factor`. The graph comes
   from traces, or is given (a service map) when there are none.
6. Earlier onset breaks near-ties: effects follow causes.
7. A service with no logs or no traces can still be ranked from what it has; its
   confidence is scaled down by the share of modalities observed for it. What the
   whole diagnosis lacked (a modality absent everywhere, a short or missing normal
   period) is listed on every cause (`lacking`) and lowers every score by
   `lacking_weight` each (`confidence_factor`): the order stays, the confidence drops.

Every candidate service is returned, strictly ordered: score, then onset (earlier
first), then strength (the largest robust z of its metrics, below the finding
threshold too), then number of modalities with evidence. Each cause says which of
these broke its tie with its neighbour (`tie`); only a tie none of them breaks falls
back to the name, for a reproducible order, and says so ("unbroken").

Only ranking happens here: the findings come from the detectors (fitted and scored by
the caller: the daemon's detect stage, the Nezha benchmark), the service graph from the
trace detector, and which modalities had data from `observed_modalities`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from correlators.attribution import ERROR_STATS, Evidence, PerModality, attribute
from correlators.coverage import MODALITIES
from correlators.incident import Cause, CauseKind
from detectors.metric_meaning import PROPAGATES_UP, MetricClass, is_request_count, metric_class
from detectors.records import Direction, Finding, FindingKind
from detectors.traces.graph import ServiceGraph

# Evidence that a service's code path broke although it logged no error: a template its
# operation always wrote stopped (an exception or early return cut the path short), or
# its spans stopped altogether (it crashed). Its callers' errors are then most likely
# this failure passed up.
_FAILURE_STATS = ERROR_STATS | {"vanished_template", "broken_sequence", "service_vanished"}


def _is_failure(statistic: str) -> bool:
    """A service's own failure: its errors, a silently broken code path, or a fatal pattern
    in its logs (detectors/logs/service_level.py: OOMKilled, CUDA out of memory, a panic),
    which is often all a killed pod leaves."""
    return statistic in _FAILURE_STATS or statistic.startswith("fatal_")

_TOP = 3
_ONSET_SLACK_S = 30.0
# Errors passed up a synchronous call chain appear with the callee's failure, not
# minutes later: a caller whose errors began this long after its callee's failure
# started is failing for a reason of its own.
_PROPAGATION_S = 60.0


@dataclass(frozen=True)
class RcaParams:
    inherited_error_factor: float = 0.5
    coverage_weight: float = 0.15  # confidence lost when all modalities but one are missing
    onset_bonus: float = 0.03  # added to the earliest-onset service among near-ties
    explain_share: float = 0.25  # a callee this strong (x the caller's) explains the caller's symptoms
    explained_factor: float = 0.5  # what explained caller symptoms still count
    lacking_weight: float = 0.1  # confidence lost per thing the diagnosis lacked


def _noisy_or(scores: Iterable[float]) -> float:
    top = sorted((min(max(s, 0.0), 1.0) for s in scores), reverse=True)[:_TOP]
    return 1.0 - math.prod(1.0 - s for s in top)



@dataclass(frozen=True)
class RcaContext:
    """What the ranking knows besides the findings; all optional.

    `candidates` adds services with no findings (so the list is complete);
    `observed` maps a service to the modalities that had data for it ("metrics",
    "logs", "traces"); without it, coverage is inferred from the findings.
    `strength` (service -> largest robust z of its metrics) breaks ties; `lacking`
    says what the diagnosis lacked (see `what_lacked`).
    """
    candidates: Sequence[str] = ()
    observed: Mapping[str, set[str]] | None = None
    strength: Mapping[str, float] | None = None
    lacking: Sequence[str] = ()


def rank_root_causes(*, metric_findings: list[Finding], log_findings: list[Finding],
                     trace_findings: list[Finding], topology: ServiceGraph | None, alert_time: float,
                     context: RcaContext = RcaContext(), params: RcaParams = RcaParams()) -> list[Cause]:
    """Every candidate service ranked, best first, as Cause(kind=SERVICE)."""
    graph = topology or ServiceGraph()
    observed = context.observed
    findings = [f for f in (*metric_findings, *log_findings, *trace_findings) if f.service]
    services = set(context.candidates) | {f.service for f in findings if f.service} | graph.services
    if observed:
        services |= set(observed)
    per = attribute(findings, trace_findings, graph, services, params.inherited_error_factor)
    inherited = _inherited_errors(per, services, graph)
    explained = _metric_explained(per, services, graph, params)
    rows = [_row(s, per, s in inherited, s in explained, observed, params) for s in sorted(services)]
    for r in rows:
        r.strength = float((context.strength or {}).get(r.service, 0.0))
    _give_onset_bonus(rows, params)
    rows.sort(key=lambda r: (*_order(r), r.service))
    lacking = list(context.lacking)
    factor = max(0.0, 1.0 - params.lacking_weight * len(lacking))
    return [_cause(r, inherited, explained, alert_time, i, _tie(rows, i), lacking, factor)
            for i, r in enumerate(rows)]


def _give_onset_bonus(rows: list[_Row], params: RcaParams) -> None:
    """Effects follow causes: among services within 10 % of the best, the earliest onset
    gets a small bonus; when several share that onset, the strongest of them; when
    that ties too, nobody (the bonus never goes to whichever came first)."""
    best = max((r.score for r in rows), default=0.0)
    near = [r for r in rows if best > 0 and r.score >= 0.9 * best and math.isfinite(r.onset)]
    if len(near) < 2:
        return
    early = min(r.onset for r in near)
    first = [r for r in near if r.onset == early]
    top = max(r.strength for r in first)
    first = [r for r in first if r.strength == top]
    if len(first) == 1:
        first[0].score = min(1.0, first[0].score + params.onset_bonus)


def _order(r: _Row) -> tuple[float, float, float, int]:
    return (-round(r.score, 9), r.onset, -round(r.strength, 6), -r.n_mods)


_ORDER_NAMES = ("score", "onset", "strength", "modalities")


def _tie(rows: list[_Row], i: int) -> dict[str, Any] | None:
    """How row i was told apart from a neighbour of equal score: None when the score did."""
    for j in (i - 1, i + 1):
        if 0 <= j < len(rows) and _order(rows[j])[0] == _order(rows[i])[0]:
            a, b = _order(rows[i]), _order(rows[j])
            by = next((n for n, x, y in zip(_ORDER_NAMES, a, b, strict=True) if x != y), "unbroken")
            return {"with": rows[j].service, "broken_by": by}
    return None


def _strength_and_onset(per: PerModality, s: str, keep: Callable[[str], bool]) -> tuple[float, float]:
    """Noisy-OR of a service's log and trace evidence of the statistics `keep` accepts, and its first onset."""
    items = [(ws, f) for m in ("logs", "traces") for ws, f in per.get((s, m), []) if keep(f.statistic)]
    return _noisy_or(ws for ws, _ in items), min((f.onset for _, f in items), default=math.inf)


_NONE = (0.0, math.inf)  # (strength, onset) of a service with no such evidence


def _passed_up_from(s: str, graph: ServiceGraph, trouble: dict[str, tuple[float, float]],
                    linked: Callable[[str, str], bool]) -> str | None:
    """The callee c of `s` whose trouble `s`'s most likely is (`linked(s, c)`): the strongest,
    then the earliest, then by name (callees() is a set, whose order varies between runs,
    and the callee named here is in the alert's text). Of services calling each other in a
    cycle (a callback; A -> B -> C -> A), each linked to the next within the slack, a link
    that closes the cycle is kept only when the callee's trouble came first: else every
    one was discounted and the cause named as its own victim's victim."""
    def came_first(c: str) -> bool:
        (c_st, c_on), (s_st, s_on) = trouble.get(c, _NONE), trouble.get(s, _NONE)
        return (c_on, -c_st) < (s_on, -s_st)

    for c in sorted(graph.callees(s), key=lambda c: (-trouble.get(c, _NONE)[0], trouble.get(c, _NONE)[1], c)):
        if linked(s, c) and (came_first(c) or not _links_back(c, s, graph, linked)):
            return c
    return None


def _links_back(c: str, s: str, graph: ServiceGraph, linked: Callable[[str, str], bool]) -> bool:
    """Whether c's trouble may itself be s's, through a chain of linked callees (each
    service visited once: a cycle in the graph cannot loop)."""
    seen, todo = {c}, [c]
    while todo:
        x = todo.pop()
        for y in graph.callees(x):
            if y not in seen and linked(x, y):
                if y == s:
                    return True
                seen.add(y)
                todo.append(y)
    return False


def _inherited_errors(per: PerModality, services: set[str], graph: ServiceGraph) -> dict[str, str]:
    """service -> the callee whose failure its errors most likely pass up."""
    error = {s: _strength_and_onset(per, s, ERROR_STATS.__contains__) for s in services}
    # What a callee can pass up: its errors, a code path of its that broke silently, a fatal pattern.
    fail = {s: _strength_and_onset(per, s, _is_failure) for s in services}

    def passes_up(s: str, c: str) -> bool:
        """Whether s's errors may be callee c's failure passed up."""
        (strength, onset), (c_strength, c_onset) = error[s], fail.get(c, _NONE)
        return (strength > 0 and c_strength >= 0.5 * strength
                and -_ONSET_SLACK_S <= onset - c_onset <= _PROPAGATION_S)

    found = {s: _passed_up_from(s, graph, fail, passes_up) for s in services}
    return {s: c for s, c in found.items() if c is not None}


def _metric_explained(per: PerModality, services: set[str], graph: ServiceGraph, params: RcaParams
                      ) -> dict[str, str]:
    """service -> the callee whose own anomaly most likely explains the service's latency,
    error and availability metrics (a server-side percentile includes its callees' time;
    a failed call fails the caller's request)."""
    def strength_onset(s: str, keep: Any) -> tuple[float, float]:
        items = [(ws, f) for m in MODALITIES for ws, f in per.get((s, m), []) if ws > 0 and keep(f)]
        return _noisy_or(ws for ws, _ in items), min((f.onset for _, f in items), default=math.inf)

    own = {s: strength_onset(s, _propagates) for s in services}
    cause = {s: strength_onset(s, _can_explain) for s in services}
    driven = _driven(per, services)

    def explained_by(s: str, c: str) -> bool:
        (st, onset), (c_st, c_onset) = own[s], cause.get(c, _NONE)
        return (c not in driven and st > 0 and c_st > 0 and c_st >= params.explain_share * st
                and c_onset <= onset + _PROPAGATION_S)

    found = {s: _passed_up_from(s, graph, cause, explained_by) for s in services}
    return {s: c for s, c in found.items() if c is not None}


def _driven(per: PerModality, services: set[str]) -> set[str]:
    """Services whose request count rose: traffic flows down the call graph, so a callee
    sent more requests than usual is driven by its callers (a retry storm, a new code
    path that calls it), and its slowness under that load explains none of theirs."""
    return {s for s in services for m in MODALITIES for _, f in per.get((s, m), [])
            if f.kind is FindingKind.METRIC_ANOMALY and f.direction is Direction.UP
            and _class(f) is MetricClass.UNKNOWN and is_request_count(str(f.evidence.get("metric", "")))}


@dataclass
class _Row:
    service: str
    score: float
    mods: dict[str, float]
    evidence: Evidence
    onset: float
    coverage: list[str]
    n_mods: int = field(init=False)
    strength: float = 0.0
    coverage_known: bool = False  # `coverage` is what had data (observed), not inferred from findings

    def __post_init__(self) -> None:
        self.n_mods = sum(v > 0 for v in self.mods.values())


def _row(s: str, per: PerModality, errors_inherited: bool, explained: bool,
         observed: Mapping[str, set[str]] | None, params: RcaParams) -> _Row:
    mods: dict[str, float] = {}
    evidence: Evidence = []
    for m in MODALITIES:
        items = per.get((s, m), [])
        if errors_inherited:
            items = [(ws * params.inherited_error_factor if f.statistic in ERROR_STATS else ws, f)
                     for ws, f in items]
        if explained:
            items = [(ws * params.explained_factor if _propagates(f) else ws, f) for ws, f in items]
        # Findings of one modality on one service are strongly correlated (CPU usage
        # and CPU rate; p90, p95 and p99; a new error template and the error burst it
        # causes), so within a modality the strongest finding speaks for it.
        mods[m] = max((min(max(ws, 0.0), 1.0) for ws, _ in items), default=0.0)
        evidence += items
    combined = 1.0 - math.prod(1.0 - v for v in mods.values())
    seen = observed.get(s, set()) if observed else {m for m in MODALITIES if per.get((s, m))}
    coverage = len(set(seen) & set(MODALITIES)) / len(MODALITIES)
    conf = combined * (1.0 - params.coverage_weight * (1.0 - coverage)) if observed else combined
    onset = min((f.onset for ws, f in evidence if ws > 0), default=math.inf)
    return _Row(s, conf, mods, evidence, onset, sorted(seen), coverage_known=bool(observed))


def _is_latency(f: Finding) -> bool:
    return f.statistic in ("self_time_ms_p50", "edge_time_ms_p50") or _is_inclusive_latency(f)


def _is_inclusive_latency(f: Finding) -> bool:
    return f.kind is FindingKind.METRIC_ANOMALY and _class(f) is MetricClass.LATENCY


def _class(f: Finding) -> MetricClass:
    if "class" in f.evidence:
        return MetricClass(f.evidence["class"])
    return metric_class(str(f.evidence.get("metric", "")))


def _propagates(f: Finding) -> bool:
    """A metric symptom a caller shows when its callee fails: latency, errors, availability."""
    return f.kind is FindingKind.METRIC_ANOMALY and _class(f) in PROPAGATES_UP


def _can_explain(f: Finding) -> bool:
    """Evidence of a service's own trouble that its callers' symptoms may come from."""
    if f.kind is FindingKind.METRIC_ANOMALY:
        return _class(f) in PROPAGATES_UP | {MetricClass.SATURATION}
    return _is_latency(f) or _is_failure(f.statistic)


def _cause(r: _Row, inherited: dict[str, str], explained: dict[str, str], alert_time: float, rank: int,
           tie: dict[str, Any] | None, lacking: list[str], factor: float) -> Cause:
    ev = sorted(r.evidence, key=lambda x: -x[0])
    top = [f for ws, f in ev if ws > 0][:5]
    s = r.service
    # The score this cause carries (and Slack prints as its confidence): lowered by what the
    # diagnosis lacked, so the explanation never names a higher figure than the cause.
    score = round(float(r.score) * factor, 6)
    if not top and r.coverage_known and not r.coverage:
        # Nothing of it had data: a service whose pods are gone looks exactly like this,
        # so "no anomaly found" would read as an all clear for the likeliest culprit.
        text = (f"{s}: no metrics, logs or traces of it in the window, so nothing could be judged: "
                "check that it is running and reporting.")
    elif not top:
        text = f"{s}: no anomaly found in its {', '.join(r.coverage) or 'signals'} around the alert."
    else:
        lines = "; ".join(f.message for f in top[:3])
        text = f"{s} (score {score:.2f}): {lines}."
        if s in inherited:
            text += f" Its errors may be passed up from {inherited[s]}, which it calls and which failed first."
        if s in explained:
            text += (f" Its latency/availability may come from {explained[s]}, which it calls"
                     " and which shows trouble too.")
        if rank == 0:
            text += (" Check this service first: its recent deploys, its pod (CPU, memory, restarts)"
                     " and the sample lines.")
    missing = [m for m in MODALITIES if m not in r.coverage]
    onset = r.onset if math.isfinite(r.onset) else None
    if lacking:
        text += f" Confidence lowered; what the diagnosis lacked: {'; '.join(lacking)}."
    return Cause(
        kind=CauseKind.SERVICE, entity=s, score=score, explanation=text,
        evidence={
            "modalities": {m: round(v, 4) for m, v in r.mods.items()},
            "observed": r.coverage, "missing": missing,
            "onset": onset,
            "onset_vs_alert_s": (r.onset - alert_time) if onset is not None else None,
            "inherited_from": inherited.get(s),
            "explained_by": explained.get(s),
            "strength": round(r.strength, 4),
            "tie": tie,
            "lacking": lacking,
            "confidence_factor": round(factor, 4),
            "findings": [f.to_dict() for f in top],
        },
    )
