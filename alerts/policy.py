"""Severity policy: which tier an incident gets, and whether it may roll back.

Tiers (defaults from the field, all overridable in vigil.yaml):

- warning  (model owner): any watched feature's drift statistic >= drift_warning;
           a KPI moved the bad way by >= kpi_drop_pct; GPU saturation; metric, log or
           trace anomalies; data-quality problems; missing data (Vigil is blind); a
           canary that failed against the champion (it is pulled at once: nobody to page).
- critical (owner + on-call):
    a. drift >= drift_critical together with a KPI drop >= kpi_drop_pct (not in cold start; a
       drop whose top cause is a deploy of this model only once it has held, as in c);
    b. an SLO breached for slo_consecutive_cycles cycles in a row;
    c. a KPI drop >= kpi_drop_pct whose top cause is a deploy of this model, held for
       three stretches of its current level and beyond its noise (`KpiDetector.held`): a regression
       the deploy introduced. This holds in cold start too: cold start mutes *drift*
       against a reference the new version was never meant to match, not business impact.
- cold start: for `cold_start` after a deploy, drift is measured against the training
  reference and never makes an incident more than a warning.

The rollback guard allows an automatic rollback only for a critical incident whose top
cause is a recent deploy of that model with enough confidence and evidence other than
missing data, and only inside the cool-down and daily cap; a dry run records what would
have happened.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from correlators.incident import CauseKind, Incident
from detectors.kpi import held_words
from detectors.numbers import spelt
from detectors.records import Finding, FindingKind


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"warning": 1, "critical": 2}[self.value]


@dataclass(frozen=True)
class RollbackGuard:
    enabled: bool = True
    dry_run: bool = False
    cooldown: float = 6 * 3600.0
    max_per_day: int = 2
    min_confidence: float = 0.6


@dataclass(frozen=True)
class Policy:
    drift_warning: float = 0.1
    drift_critical: float = 0.2
    kpi_drop_pct: float = 5.0
    slo_consecutive_cycles: int = 3
    cold_start: float = 7 * 86400.0
    rollback: RollbackGuard = field(default_factory=RollbackGuard)


@dataclass
class TierDecision:
    severity: Severity | None  # None: nothing to alert on (yet), e.g. an SLO breach still pending
    reasons: list[str]
    cold_start: bool

    @property
    def pending(self) -> bool:
        """Something is wrong, not yet for long enough to alert on (an SLO breached for fewer
        cycles than slo_consecutive_cycles): the reasons say what."""
        return self.severity is None and bool(self.reasons)


def in_cold_start(last_deploy_at: float | None, now: float, policy: Policy) -> bool:
    return last_deploy_at is not None and 0 <= now - last_deploy_at < policy.cold_start


def assign_tier(
    incident: Incident,
    policy: Policy,
    *,
    now: float,
    last_deploy_at: float | None,
    slo_streaks: dict[str, int],
) -> TierDecision:
    cold = in_cold_start(last_deploy_at, now, policy)
    drift = [f for f in incident.findings if f.kind in (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT)]
    kpi = [f for f in incident.findings if f.kind == FindingKind.KPI_DROP and abs(f.value) >= _kpi_limit(f, policy)]
    slo = [f for f in incident.findings if f.kind == FindingKind.SLO_BREACH]
    critical: list[str] = []
    warning: list[str] = []

    max_drift = max(drift, key=lambda f: f.value, default=None)
    # A deploy's own KPI drop must hold before it is critical (c), with drift too: past cold
    # start a new version's prediction drift and one noisy cycle rolled the deploy back.
    paired = [k for k in kpi if _held(k) or not _deploy_blamed(incident)]
    # At a threshold is over it, as the detector (and Evidently's page) reads its own threshold:
    # with `>` a drift finding at exactly 0.1 warned nobody.
    if max_drift is not None and max_drift.value >= policy.drift_critical and paired:
        k = paired[0]
        why = (f"drift {max_drift.statistic} {spelt(max_drift.value, '.3g')} "
               f"{_over(max_drift.value, policy.drift_critical)} {policy.drift_critical:g} on "
               f"{max_drift.entity} with KPI {k.entity} {k.value:+.1f}% (limit -{_kpi_limit(k, policy):g}%)")
        (warning if cold else critical).append(why + (" [cold start: capped at warning]" if cold else ""))
    for f in slo:
        streak = slo_streaks.get(f.entity, 0)
        if streak >= policy.slo_consecutive_cycles:
            critical.append(f"SLO {f.entity} breached {streak} cycles in a row "
                            f"({spelt(f.value, '.4g')} vs {spelt(f.threshold, '.4g')}; "
                            f"limit {policy.slo_consecutive_cycles})")
    _regression(incident, kpi, critical, warning)

    if max_drift is not None and max_drift.value >= policy.drift_warning:
        warning.append(f"drift {max_drift.statistic} {spelt(max_drift.value, '.3g')} "
                       f"{_over(max_drift.value, policy.drift_warning)} {policy.drift_warning:g} "
                       f"on {max_drift.entity}")
    for k in kpi:
        warning.append(f"KPI {k.entity} {k.value:+.1f}% (limit {k.threshold:+g}%)")
    # Ground truth says the model got worse: critical. An estimate (CBPE, labels not in yet) warns,
    # and so do labels so far mostly of one predicted class (detectors/performance/label_sample.py).
    for f in incident.findings:
        if f.kind == FindingKind.PERFORMANCE_DROP:
            paged = f.evidence.get("basis") == "realised" and not f.evidence.get("label_bias")
            (critical if paged else warning).append(f.message)
    for f in incident.findings:
        if f.kind in (FindingKind.GPU_SATURATION, FindingKind.METRIC_ANOMALY, FindingKind.LOG_ANOMALY,
                      FindingKind.TRACE_ANOMALY, FindingKind.DATA_QUALITY, FindingKind.NO_DATA,
                      FindingKind.CANARY_FAIL) and not _ranking_only(f):
            warning.append(f.message or f"{f.kind} on {f.entity}")

    if critical:
        return TierDecision(Severity.CRITICAL, critical + warning, cold)
    if warning:
        return TierDecision(Severity.WARNING, warning, cold)
    return TierDecision(None, [f"pending: {f.message}" for f in slo], cold)


def _over(value: float, limit: float) -> str:
    """`>` above the limit, `>=` at it: "0.1 > 0.1" read as a contradiction."""
    return ">" if value > limit else ">="


def _kpi_limit(f: Finding, policy: Policy) -> float:
    """The drop that counts for this KPI: its own `drop_pct` (vigil.yaml), which its finding
    carries as threshold, else the policy's. Judged against the policy's alone, a KPI set
    to alert at 2 % reported a 3 % drop that nothing alerted on."""
    return abs(f.threshold) if f.threshold else policy.kpi_drop_pct


def _regression(incident: Incident, kpi: list[Finding], critical: list[str], warning: list[str]) -> None:
    """A KPI drop whose top cause is a deploy of this model: critical once the drop has held,
    a warning saying so until then (one noisy cycle must not roll a healthy version back)."""
    top = incident.top_cause
    if not (kpi and top is not None and _deploy_blamed(incident)):
        return
    held = [k for k in kpi if _held(k)]
    if held:
        critical.append(f"KPI {held[0].entity} {held[0].value:+.1f}% after deploy of {top.entity}"
                        + _held_words(held[0]))
        return
    warning.append(f"KPI {kpi[0].entity} {kpi[0].value:+.1f}% after deploy of {top.entity}: "
                   + _not_held_words(kpi[0]))


def _deploy_blamed(incident: Incident) -> bool:
    """Is the incident's top cause a deploy of its own model (what a rollback would undo)?"""
    top = incident.top_cause
    return top is not None and top.kind == CauseKind.DEPLOY and top.deploy is not None \
        and top.deploy.model == incident.model


def stalled_regressions(incident: Incident) -> list[str]:
    """KPIs whose drop after a deploy of this model cannot hold, and so turn critical, because
    their traffic stopped (0/0) first (`KpiDetector.no_traffic`): what the warning said about
    when it would be critical no longer holds, and people are to be told so."""
    if not _deploy_blamed(incident):
        return []
    return sorted({f.entity for f in incident.findings if f.kind == FindingKind.KPI_DROP and not _held(f)
                   and f.evidence.get("no_traffic_s") is not None})


def _held(f: Finding) -> bool:
    """Has this KPI drop held long enough to be a deploy's regression (`KpiDetector.held`)?
    A finding that does not say (not made by the KPI detector) counts as held."""
    return f.evidence.get("held_s") is None or float(f.evidence["held_s"]) > 0


def _not_held_words(f: Finding) -> str:
    """When a drop that has not held would be critical. Never, while the KPI's noise is unknown
    (too few baseline points): "critical once ... 15 min" promised a page that never came; nor
    while its traffic has stopped (`KpiDetector.no_traffic`), until it returns."""
    if "noise_pct" in f.evidence and f.evidence["noise_pct"] is None:
        return ("its noise is unknown (too few points in its baseline hour): not critical on this drop, "
                "roll back by hand")
    quiet = f.evidence.get("no_traffic_s")
    if quiet is not None:  # no stretch holds while 0/0: "critical once ... 15 min" never came either
        return (f"no traffic (0/0) for the last {float(quiet) / 60:.0f} min: the drop cannot hold until traffic "
                "returns (not critical meanwhile; a person may roll back)")
    needed = f.evidence.get("held_needed_s")
    return ("critical once the drop has held " + (f"{float(needed) / 60:.0f} min " if needed else "")
            + "beyond the KPI's own noise")


def _held_words(f: Finding) -> str:
    held, needed, z, noise = (None if f.evidence.get(k) is None else float(f.evidence[k])
                              for k in ("held_s", "held_needed_s", "held_z", "noise_pct"))
    return ", " + held_words(held, needed, z, noise) if held else ""


def _ranking_only(f: Finding) -> bool:
    """Evidence a detector marks as fit to rank an incident's causes but not to raise one:
    a call pair new to the trace baseline judged against other pairs' calls (a new
    dependency in another zone is slower than the pool with nothing wrong), a log line
    that stopped with no spans to count runs by (a job that ended, an endpoint nobody
    calls now)."""
    return bool(f.evidence.get("ranking_only"))


@dataclass
class RollbackVerdict:
    allowed: bool
    dry_run: bool
    reason: str  # why it is allowed or refused, with the numbers
    to_version: str | None = None
    from_version: str | None = None  # the version the incident blames: the only one to move away from
    code: str = "allowed"  # which guard decided, stable across cycles (the reason's numbers are not)


def check_rollback(
    incident: Incident,
    severity: Severity | None,
    guard: RollbackGuard,
    *,
    now: float,
    recent_rollbacks: list[float],  # times of this model's rollbacks (done, not dry runs)
    maintenance: tuple[str, ...] = (),  # the model's maintenance windows active now
    partial: Mapping[str, str] | None = None,  # signals this cycle read from a partial answer -> why
) -> RollbackVerdict:
    """May Vigil move the alias back on its own? Every refusal says which guard said no."""
    top = incident.top_cause
    if severity != Severity.CRITICAL:
        return RollbackVerdict(False, guard.dry_run, f"incident is {severity or 'not alerting'}, not critical",
                               code="not_critical")
    if top is None or top.kind != CauseKind.DEPLOY or top.deploy is None or top.deploy.model != incident.model:
        return RollbackVerdict(False, guard.dry_run, "top cause is not a deploy of this model", code="no_deploy")
    target, blamed = top.deploy.previous_version, top.deploy.version
    if not target:
        return RollbackVerdict(False, guard.dry_run, f"no previous version recorded before {top.entity}",
                               code="no_previous")

    def refuse(code: str, reason: str) -> RollbackVerdict:
        return RollbackVerdict(False, guard.dry_run, reason, target, blamed, code)

    if not guard.enabled:
        return refuse("disabled", "automatic rollback is disabled (policy.rollback.enabled)")
    if maintenance:  # planned work (a migration, an expected dip) is the team's to judge, not Vigil's
        return refuse("maintenance", f"maintenance window {', '.join(maintenance)} is active: no automatic "
                                     "rollback during planned work (after it, if still critical); people may roll back")
    if partial:  # a store that did not answer can look like a drop: half the successes missing
        shown = "; ".join(f"{k}: {v}" for k, v in list(partial.items())[:3])
        return refuse("partial_read", f"read from a partial answer ({shown}): no automatic rollback on data a "
                                      "store may be missing (once it answers whole, if still critical); people may "
                                      "roll back")
    if top.evidence.get("only_no_data"):  # correlators/no_data.py: series that stopped after the deploy
        return refuse("no_data_only", "the deploy's only evidence is no data (series that stopped after it): no "
                                      "automatic rollback on data Vigil cannot read; people may roll back")
    if top.score < guard.min_confidence:
        return refuse("confidence", f"cause confidence {top.score:.2f} < min_confidence {guard.min_confidence:.2f}")
    last = max(recent_rollbacks, default=None)
    if last is not None and now - last < guard.cooldown:
        return refuse("cooldown", f"cool-down: last rollback {(now - last) / 60:.0f} min ago "
                                  f"< {guard.cooldown / 60:.0f} min")
    today = [t for t in recent_rollbacks if now - t < 86400.0]
    if len(today) >= guard.max_per_day:
        return refuse("daily_cap", f"daily cap: {len(today)} rollbacks in 24 h >= max_per_day {guard.max_per_day}")
    return RollbackVerdict(True, guard.dry_run,
                           f"critical, top cause {top.entity} at confidence {top.score:.2f} "
                           f">= {guard.min_confidence:.2f}", target, blamed)
