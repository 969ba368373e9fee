"""Turn one model's findings in one window into an incident with ranked suspects.

Three kinds of suspect, each scored from evidence a person can check:

- a deploy of this model shortly before onset: the classic "it broke when we shipped".
  Strongest when the model's own outputs moved (prediction drift) or the business KPI
  fell; weak when the symptoms are infrastructure ones (latency with a saturated GPU).
- GPU saturation overlapping the onset of latency/SLO symptoms, strongest when the
  saturation started first.
- upstream data drift: input features moved with no deploy to explain it, so the
  change came from the data, not the model.

Scores are additive evidence weights clipped to [0, 1], not probabilities; the
explanation says which pieces of evidence counted so the ranking can be argued with.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from correlators.deploy_advice import deploy_advice
from correlators.deploy_advice import fmt_time as _fmt_time
from correlators.incident import Cause, CauseKind, Incident
from correlators.no_data import explained_by, gap_causes, stopped_words
from correlators.story import first_wrong
from correlators.story import merge_findings as merge_findings  # where callers have always found it
from correlators.title import incident_title
from detectors.records import DeployEvent, Finding, FindingKind

_MODEL_SYMPTOMS = {FindingKind.PREDICTION_DRIFT, FindingKind.KPI_DROP, FindingKind.PERFORMANCE_DROP}
_SERVING_SYMPTOMS = {FindingKind.SLO_BREACH, FindingKind.METRIC_ANOMALY, FindingKind.TRACE_ANOMALY}
_DRIFT = {FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT}
# Findings that describe a problem (as opposed to suspects or gaps in the data).
SYMPTOMS = _MODEL_SYMPTOMS | _SERVING_SYMPTOMS | {
    FindingKind.FEATURE_DRIFT,
    FindingKind.DATA_QUALITY,
    FindingKind.LOG_ANOMALY,
    FindingKind.GPU_SATURATION,
    FindingKind.NO_DATA,
    FindingKind.CANARY_FAIL,
}


@dataclass(frozen=True)
class CorrelationSettings:
    deploy_window: float = 2 * 3600.0  # a deploy this long before onset is a suspect
    onset_slack: float = 300.0  # onsets are estimates (rate windows, change points): allow this much

    def __post_init__(self) -> None:
        if not self.deploy_window > 0:
            raise ValueError(f"deploy_window: expected seconds > 0, got {self.deploy_window}")


def _deploy_cause(d: DeployEvent, findings: list[Finding], onset: float, s: CorrelationSettings,
                  gpu_explains: bool, began: float | None = None, replaced: DeployEvent | None = None) -> Cause:
    """`began`: the incident's own onset when it began before this deploy (which is then judged
    on the model's symptoms that came after it, `onset` the first of them). `replaced`: the move
    of the alias, not Vigil's rollback, that took its place since (a person's fix forward)."""
    kinds = {f.kind for f in findings}
    lag = max(0.0, onset - d.at)
    proximity = max(0.0, 1.0 - lag / s.deploy_window)
    score = 0.35 + 0.25 * proximity
    # A suspect may come after the onset (inside its slack: onsets are estimates, a poll
    # dates a move when it sees it): say so, never "0 min before".
    when, minutes = _relative_to_onset(d.at, onset)
    if began is not None:
        when += (f" of the model's own symptoms (the incident began earlier, at {_fmt_time(began)}, "
                 "with none of them)")
        minutes = {**minutes, "incident_began_at": began}
    reasons = [f"{d.model} v{d.version} took alias '{d.alias}' at {_fmt_time(d.at)}, {when}"]
    if kinds & _MODEL_SYMPTOMS:
        score += 0.3
        moved = sorted({f.entity for f in findings if f.kind in _MODEL_SYMPTOMS})
        reasons.append(f"the model's own outputs or KPIs moved ({', '.join(moved)})")
    if FindingKind.FEATURE_DRIFT in kinds and not kinds & _MODEL_SYMPTOMS:
        score -= 0.15
        reasons.append("only input features drifted, which a model deploy does not change")
    if gpu_explains:
        score -= 0.25
        reasons.append("GPU saturation overlaps the serving symptoms and explains them better")
    score = min(1.0, max(0.0, score))
    only_no_data = bool(findings) and kinds == {FindingKind.NO_DATA}  # series that stopped after it (no_data.py)
    if only_no_data:
        reasons.append(stopped_words(findings))
    advice = deploy_advice(d, replaced, replaced is not None and moves_forward(replaced), only_no_data)
    return Cause(
        kind=CauseKind.DEPLOY,
        entity=f"{d.model} v{d.version}",
        score=score,
        deploy=d,
        explanation=(
            f"Deploy of {d.model} v{d.version} ({'; '.join(reasons)}). {advice}"
        ),
        evidence={
            "version": d.version,
            "previous_version": d.previous_version,
            "alias": d.alias,
            "deployed_at": d.at,
            **({"only_no_data": True} if only_no_data else {}),
            **minutes,
            **({"replaced_by": replaced.version, "replaced_at": replaced.at,
                "replaced_forward": moves_forward(replaced)} if replaced is not None else {}),
        },
    )


def _relative_to_onset(at: float, onset: float) -> tuple[str, dict[str, float]]:
    """'N min before onset' or 'N min after onset', and the evidence entry saying the same."""
    if at <= onset:
        return f"{(onset - at) / 60:.0f} min before onset", {"minutes_before_onset": (onset - at) / 60.0}
    return f"{(at - onset) / 60:.0f} min after onset", {"minutes_after_onset": (at - onset) / 60.0}


def _gpu_cause(gpu: list[Finding], serving: list[Finding]) -> Cause:
    first = min(gpu, key=lambda f: f.onset)
    serving_onset = min((f.onset for f in serving), default=None)
    score = 0.4
    reasons = [f.message for f in sorted(gpu, key=lambda f: -f.score)[:3]]
    if serving:
        score += 0.25
        if serving_onset is not None and first.onset <= serving_onset + 60:
            score += 0.25
            # up to a minute late still counts (onsets are estimates), but is not told as "before"
            order = "before" if first.onset <= serving_onset else "within a minute after"
            reasons.append(
                f"saturation began at {_fmt_time(first.onset)}, {order} the serving symptoms "
                f"({_fmt_time(serving_onset)})"
            )
        else:
            reasons.append("saturation overlaps the serving symptoms")
    return Cause(
        kind=CauseKind.GPU_SATURATION,
        entity=first.entity,
        score=min(1.0, score),
        explanation=(
            "GPU saturation: " + "; ".join(reasons) + ". Requests queue behind a saturated GPU, "
            "so latency rises with no change to the model. Scale out replicas or cap batch "
            "size/concurrency; a rollback would not help."
        ),
        evidence={
            "gpus": sorted({f.entity for f in gpu}),
            # "from" is when the story saw it begin (the finding's onset, kept across cycles by
            # merge_findings), not the start of the latest window's run, which the window cuts.
            "signals": {f"{f.entity}:{f.statistic}": {"mean": f.value, "limit": f.threshold,
                        "from": _saturated_from(f), "until": f.evidence.get("saturated_until")}
                        for f in gpu},
        },
    )


def _saturated_from(f: Finding) -> float:
    seen = f.evidence.get("saturated_from")
    if isinstance(seen, (int, float)) and f.evidence.get("cut") is False:
        # The window saw this run begin: a saturation that came back after a spell under the
        # limit began then, not at the story's first onset (as the finding's line says).
        return float(seen)
    return min(f.onset, float(seen)) if isinstance(seen, (int, float)) else f.onset


def _upstream_cause(drift: list[Finding], deploys: list[DeployEvent]) -> Cause:
    ranked = sorted(drift, key=lambda f: -(f.value / f.threshold if f.threshold else f.value))
    top = ranked[:3]
    strength = max(f.value / f.threshold for f in top if f.threshold) if any(f.threshold for f in top) else 1.0
    score = 0.35 + 0.15 * min(strength / 2.0, 1.0) + (0.3 if not deploys else 0.0)
    names = ", ".join(f"{f.entity} ({f.statistic} {f.value:.3g} > {f.threshold:.3g})" for f in top)
    return Cause(
        kind=CauseKind.UPSTREAM_DRIFT,
        entity=", ".join(f.entity for f in top),
        score=min(1.0, score),
        explanation=(
            f"Input data changed upstream: {names}"
            + ("" if deploys else ", with no deploy of this model in the window")
            + ". The model saw inputs unlike its reference; check the feature pipeline and the "
            "data sources that feed these features before retraining or rolling back."
        ),
        evidence={"features": [{"feature": f.entity, "statistic": f.statistic, "value": f.value,
                                "threshold": f.threshold} for f in ranked]},
    )


def of_version(findings: list[Finding], version: str) -> list[Finding]:
    """The findings a deploy of `version` may explain: all but those measured on another
    version's own rows (a performance drop names the version whose predictions it read; none
    named, or a label with no number, "unknown", may be any). A challenger's accuracy drop,
    blamed on the champion's deploy, rolled the champion back and left it on its alias."""
    def may_be(named: object, template: object) -> bool:
        return named is None or not re.search(r"\d", str(named)) or names_version(named, version, template)
    return [f for f in findings if may_be(f.evidence.get("version"), f.evidence.get("version_value"))]


def names_version(named: object, version: str, template: object = None) -> bool:
    """Whether a label names `version`: as the registry writes it ("2"), or holding it as its
    one number ("v2", "model-2", "v02": MLflow reads "02" as 2). A label with several numbers
    ("1.3.2", a package's own version) cannot say which is the registry's (each matched: a drop
    on rows labelled 1.3.2 rolled back a deploy of v1, v2 or v3): it names none, unless `template`
    (`performance.version_value`, "resnet50-v{version}") says how it is written: then exactly that."""
    if named is None or str(named) == version:
        return named is not None  # None names nothing (`of_version`: it may be any)
    if isinstance(template, str):
        return str(named) == template.replace("{version}", version)
    digits = re.findall(r"\d+", str(named))
    return len(digits) == 1 and version.isdecimal() and int(digits[0]) == int(version)


def deploy_suspects(model: str, deploys: list[DeployEvent], onset: float, s: CorrelationSettings, *,
                    forward_responses: bool = False) -> list[DeployEvent]:
    """Deploys of this model shortly before onset that were still serving when it began.

    A rollback restores a version that served before the trouble, so it is never a
    suspect; nor is a move the registry poll knows was made while an incident was open
    (source "response": a person's revert or fix forward, dated when the poll saw it,
    maybe inside the onset's slack), unless `forward_responses` and it moved to a newer
    version before `onset` (what began after it did not exist to be answered); and a deploy
    replaced (by another deploy or a rollback) before onset was no longer serving, so it
    cannot have caused what started later.
    """
    mine = sorted((d for d in deploys if d.model == model), key=lambda d: d.at)
    out = []
    for d in mine:
        answers = d.source == "response" and not (forward_responses and d.at <= onset and moves_forward(d))
        if d.source == "rollback" or answers or not onset - s.deploy_window <= d.at <= onset + s.onset_slack:
            continue
        if any(d.at < e.at <= onset and e.alias == d.alias for e in mine):
            continue
        out.append(d)
    return out


def _deploy_into_the_story(model: str, findings: list[Finding], deploys: list[DeployEvent], onset: float,
                           s: CorrelationSettings) -> tuple[DeployEvent, float] | None:
    """A deploy of this model made after the incident began, before every one of the model's own
    symptoms (its outputs, KPIs, performance), and the first of them. An incident that began
    with something else (a drift warning open for days) and whose KPI fell only after a new
    version took the alias is that version's regression: dated from the incident's onset alone,
    the deploy was no suspect, and the page blamed it (this cycle's window) while the rollback
    guard (the whole story) refused. A model symptom that began before the deploy (a KPI the
    drift had already pulled down) keeps it out: the deploy did not start what was already there."""
    own = [f for f in findings if f.kind in _MODEL_SYMPTOMS]
    if not own:
        return None
    first = min(f.onset for f in own)
    # A release made while the incident was open is a "response" to the poll; one that moved
    # forward is still the suspect of what began after it (a revert never is: rolled back, the
    # bad version would return). Nor is one made after the onset but before the incident
    # opened (recorded as a deploy, no incident being open to answer): moving forward too.
    later = [d for d in deploy_suspects(model, deploys, first, s, forward_responses=True)
             if d.at > onset + s.onset_slack and moves_forward(d)]
    return (later[-1], first) if later else None


def released_into(model: str, onset: float, earlier: list[Finding], deploys: list[DeployEvent],
                  s: CorrelationSettings = CorrelationSettings()) -> float | None:
    """When the latest release of this model was made into an open incident (begun at `onset`)
    with none of the model's own symptoms before it, so that the KPIs' baseline is the hour
    before it (`Window.kpi_baseline_end`) rather than the hour before the incident began: what
    the release is judged on (`_deploy_into_the_story`) is what it changed. None otherwise: a
    KPI already down before it keeps the frozen baseline, or that drop would become normal (also
    one back since, a new episode: `first_wrong`)."""
    own = min((first_wrong(f) for f in earlier if f.kind in _MODEL_SYMPTOMS), default=None)
    mine = [d.at for d in deploys if d.model == model and d.at > onset + s.onset_slack and d.source != "rollback"
            and moves_forward(d) and (own is None or own >= d.at - s.onset_slack)]  # a revert is no release
    return max(mine, default=None)  # a later release, after the first one's drop, keeps the first one's hour


def _replaced_by(d: DeployEvent, deploys: list[DeployEvent]) -> DeployEvent | None:
    """The move of the same alias that took `d`'s place, unless Vigil's rollback (whose outcome
    the incident's actions tell); None while it serves."""
    after = [e for e in deploys if e.model == d.model and e.alias == d.alias and e.at > d.at]
    nxt = min(after, key=lambda e: e.at, default=None)
    return nxt if nxt is not None and nxt.source != "rollback" else None


def _replaced_at(d: DeployEvent, deploys: list[DeployEvent]) -> float:
    """When the next move of the same alias (a deploy, a fix forward, a rollback) took `d`'s
    place; infinity while it serves."""
    return min((e.at for e in deploys if e.model == d.model and e.alias == d.alias and e.at > d.at),
               default=math.inf)


def older(version: str, than: str | None) -> bool:
    """MLflow numbers a model's versions in order: a move to a lower number goes back. Not
    known (no other version, names that are not numbers): False."""
    try:
        return than is not None and int(version) < int(than)
    except ValueError:
        return False


def moves_forward(d: DeployEvent) -> bool:
    """A move to a higher number goes forward. Not known: taken as not, the safe side."""
    return d.previous_version is not None and older(d.previous_version, d.version)


def build_incident(
    model: str,
    findings: list[Finding],
    deploys: list[DeployEvent],
    *,
    window_start: float,
    window_end: float,
    settings: CorrelationSettings = CorrelationSettings(),
    extra_causes: list[Cause] | None = None,
) -> Incident | None:
    """One incident for the model's findings in this window, or None if nothing is wrong."""
    symptoms = [f for f in findings if f.kind in SYMPTOMS]
    if not symptoms:
        return None
    onset = min(f.onset for f in symptoms)
    suspects = deploy_suspects(model, deploys, onset, settings)
    gpu = [f for f in findings if f.kind == FindingKind.GPU_SATURATION]
    serving = [f for f in findings if f.kind in _SERVING_SYMPTOMS]
    gpu_explains = bool(gpu and serving and not ({f.kind for f in findings} & _MODEL_SYMPTOMS))

    # Each deploy on the findings of its version (a challenger's drop is not the champion's)
    # that began while it served (a fix forward's regression is not the version it replaced),
    # its "no data" only where a series stopped after it (a wrong metric name is no version's).
    mine = {d.version: [f for f in of_version(findings, d.version) if f.onset < _replaced_at(d, deploys)
                        and explained_by(f, d, settings.onset_slack)] for d in suspects}
    causes: list[Cause] = [_deploy_cause(d, mine[d.version], onset, settings, gpu_explains,
                                         replaced=_replaced_by(d, deploys))
                           for d in suspects if any(f.kind in SYMPTOMS for f in mine[d.version])]
    if (later := _deploy_into_the_story(model, findings, deploys, onset, settings)) is not None:
        d, first = later
        own = [f for f in of_version(findings, d.version) if f.kind in _MODEL_SYMPTOMS]
        if own:
            causes.append(_deploy_cause(d, own, first, settings, gpu_explains, began=onset,
                                        replaced=_replaced_by(d, deploys)))
            suspects = [*suspects, d]
    if gpu:
        causes.append(_gpu_cause(gpu, serving))
    feature_drift = [f for f in findings if f.kind == FindingKind.FEATURE_DRIFT]
    if feature_drift:
        causes.append(_upstream_cause(feature_drift, suspects))
    canary = [f for f in findings if f.kind == FindingKind.CANARY_FAIL]
    if canary:
        causes.append(_canary_cause(model, canary))
    causes.extend(extra_causes or [])
    causes.extend(gap_causes(symptoms, suspects, causes, settings.onset_slack))
    # Ties go to a failed canary first: it is measured on the challenger's own traffic against
    # the champion's, so a champion deployed at the onset (0.9 too) must not be blamed, and
    # rolled back, for the challenger's share of the symptoms. Then to the more recent
    # deploy, then to the kind order above: stable and explainable.
    causes.sort(key=lambda c: (-round(c.score, 6), c.kind != CauseKind.CANARY,
                               -(c.deploy.at if c.deploy else 0.0)))
    return Incident(
        model=model,
        window_start=window_start,
        window_end=window_end,
        onset=onset,
        findings=findings,
        causes=causes,
        title=incident_title(model, symptoms),
    )


def _canary_cause(model: str, failed: list[Finding]) -> Cause:
    """The challenger itself: it failed on its own traffic, measured against the champion's."""
    latest = max(failed, key=lambda f: f.window_end)
    version = latest.evidence.get("challenger_version", "?")
    metrics = sorted({f.entity for f in failed})
    return Cause(kind=CauseKind.CANARY, entity=f"{model} v{version} (challenger)", score=0.9,
                 explanation=(f"The challenger v{version} failed {', '.join(metrics)} against the champion "
                              f"v{latest.evidence.get('champion_version', '?')} on the same window: "
                              f"{latest.message}"),
                 evidence={"challenger_version": version, "metrics": metrics})
