"""Canary analysis, a stage of the cycle: the challenger judged against the champion.

    read  both aliases (MLflow); nothing to do without a challenger or when it is the champion
    query every KPI and SLO twice, with `version_label="<version>"` added to each selector
          (monitor.sources.promql_text.py), over the cycle's window; the traffic query too
    split the window's samples by `version_column`; the drift detector compares the
          challenger's features and predictions with the champion's
    judge each metric (detectors/canary.py): pass, marginal, fail or inconclusive
    -> findings: one CANARY_FAIL per failed metric, joining the cycle's incident

and after the incident is applied (`act`):

    record the verdict table and the run (passes in a row)
    fail, or the challenger's own realised accuracy dropped (monitor/cycle/canary_pull.py)
          -> pull: a durable intent (monitor/cycle/rollback_intents.py, kind canary_pull):
             the challenger alias removed, the serving layer pinned to the champion; audited
    N passes in a row -> a promotion suggestion, or a promotion (kind canary_promote)

Inconclusive (too few points, too little traffic or every series at 0, a query that failed) never counts as a
pass: it ends a run of passes and never promotes.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alerts.rollback import ActionStatus
from detectors.canary import CanaryVerdict, MetricVerdict, Verdict, distribution_verdict, judge_metric
from detectors.drift import DriftDetector, DriftParams
from detectors.drift.decision import statistic_for
from detectors.records import PARTIAL_WORDS, Finding, FindingKind, partial_of
from monitor.config import CanaryConfig, ModelConfig, PolicyConfig
from monitor.cycle.canary_blame import detail_after_hold, performance_hold, promotion_blame
from monitor.cycle.canary_pull import (
    SET_AGAIN,
    accuracy_grounds,
    fresh_since,
    judged_window,
    rows_since,
    set_again_detail,
    under_way,
)
from monitor.cycle.canary_rules import metric_rules
from monitor.cycle.canary_zero import zero_as_no_traffic
from monitor.cycle.detect_drift import feature_specs
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.rollback_ask import CANARY_PROMOTE, CANARY_PULL, RollbackAsk
from monitor.cycle.rollback_intents import RollbackRunner
from monitor.cycle.samples import naming
from monitor.metrics import NO_CANARY, VigilMetrics
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.promql_text import PromQLSyntaxError, longest_range, with_matcher
from monitor.store.audit_log import retry_audited
from monitor.store.canary import CanaryVerdictRow, last_verdict_of, run_row
from monitor.store.intents import open_intents
from monitor.store.repository import Store
from monitor.types import Window

log = logging.getLogger("vigil.canary")
TRAFFIC = "traffic"
NO_SUCH_VERSION = "vigil-no-such-version"  # a label value no series has: what a query answers for nothing


@dataclass(frozen=True)
class CanaryJudgement:
    """One cycle's canary: the two versions and the verdict table (None: no canary now)."""

    champion: str | None
    challenger: str
    verdict: CanaryVerdict
    findings: list[Finding] = field(default_factory=list)
    since: float | None = None  # where its window starts afresh (canary_pull.fresh_since), read once a cycle


class CanaryAnalysis:
    """Wired once by `Vigil`; `judge` runs before correlation, `act` after apply."""

    def __init__(self, prometheus: Any, registry: Any, store: Store, runner: RollbackRunner, outbox: OutboxWriter,
                 metrics: VigilMetrics, step: float) -> None:
        self.prometheus, self.registry, self.store, self.step = prometheus, registry, store, step
        self.runner, self.outbox, self.metrics = runner, outbox, metrics
        # (query, version label) -> `_unsplit`'s answer, once Prometheus gave one: whether a
        # query answers for a version that does not exist is in its text, not its data.
        self._split_checked: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ judge
    def judge(self, m: ModelConfig, w: Window, policy: PolicyConfig, samples: pd.DataFrame | None
              ) -> CanaryJudgement | None:
        c = m.canary
        if c is None:
            return None
        try:
            challenger = self.registry.alias_version(m.registry, c.alias)
            champion = self.registry.alias_version(m.registry, m.alias)
        except (SourceUnavailable, QueryError) as e:
            (log.debug if getattr(e, "said", False) else log.warning)(  # a repeat already said: debug
                "canary: registry unavailable", extra={"model": m.name, "error": str(e)})
            return None  # the registry's blindness is the cycle's (monitor/vigil.py _blind)
        if challenger is None or challenger == champion:
            # No canary runs (pulled, promoted): say so, not the last challenger's verdict.
            self.metrics.publish_canary(m.name, {}, {}, {"_overall": NO_CANARY})
            return None
        since = fresh_since(self.store, m.name, challenger, w.t)
        w = judged_window(w, c.window, since)  # from its latest pull on
        verdicts = self._metric_verdicts(m, c, w, champion, challenger)
        verdicts += self._distribution_verdicts(m, c, policy, rows_since(samples, w, c.window), champion, challenger)
        verdict = CanaryVerdict(verdicts)
        findings = [self._finding(m, w, champion, challenger, v, verdict) for v in verdict.failed]
        return CanaryJudgement(champion, challenger, verdict, findings, since)

    def _series(self, query: str, c: CanaryConfig, version: str, w: Window, name: str
                ) -> tuple[np.ndarray | None, str]:
        """The per-step values of one version's query over the window, one range apart, or None and why not."""
        try:
            query, step = self._split(query, c, version)
        except PromQLSyntaxError as e:  # this query's verdict says so; the model's cycle goes on
            return None, f"the version label cannot be added to the query: {e}"
        try:
            found = self.prometheus.query_range(query, w.start, w.t, step=step, name=name)
        except SourceUnavailable as e:
            return None, f"Prometheus unavailable ({e.reason})"
        except QueryError as e:
            return None, f"query rejected: {e.reason}"
        partial = partial_of(found)
        found = [s for s in found if not s.empty]
        if not found:  # a store down may hold all of this version's series: say so, not "none"
            return None, f"{PARTIAL_WORDS}: {partial}" if partial else "no series for this version"
        if len(found) > 1:
            return None, f"{len(found)} series for one version: the query must return one (aggregate it)"
        if found[0].partial:  # a store missed: its share of one side would read as a difference
            return None, f"{PARTIAL_WORDS}: {found[0].partial}"
        return found[0].values, ""

    def _metric_verdicts(self, m: ModelConfig, c: CanaryConfig, w: Window, champion: str | None, challenger: str
                         ) -> list[MetricVerdict]:
        low_traffic = self._traffic_short(c, w, challenger)
        out, read = [], []  # read: the challenger's series of the metrics judged
        for mq in metric_rules(m, c):
            if low_traffic:
                out.append(MetricVerdict(mq.rule.name, Verdict.INCONCLUSIVE, low_traffic, alpha=mq.rule.alpha,
                                         fail_effect=mq.rule.fail_effect, marginal_effect=mq.rule.marginal_effect))
                continue
            sides: list[np.ndarray] = []
            why = self._unsplit(mq.query, c, w)
            for role, version in (("champion", champion), ("challenger", challenger)) if not why else ():
                if version is None:
                    why = f"{role}: alias '{m.alias}' points at no version"
                    break
                values, err = self._series(mq.query, c, c.label_value(version), w, f"{mq.rule.name} ({role})")
                if values is None:
                    why = f"{role} v{version}: {err}"
                    break
                sides.append(values)
            if why:
                out.append(MetricVerdict(mq.rule.name, Verdict.INCONCLUSIVE, why, alpha=mq.rule.alpha,
                                         fail_effect=mq.rule.fail_effect, marginal_effect=mq.rule.marginal_effect,
                                         fail_above=mq.rule.fail_above, fail_below=mq.rule.fail_below))
                continue
            out.append(judge_metric(mq.rule, sides[0], sides[1]))
            read.append(sides[1])
        if c.traffic_query is not None:
            return out
        return zero_as_no_traffic(out, read, challenger, lambda: self._volume(m, c, w, challenger), c.min_traffic)

    def _volume(self, m: ModelConfig, c: CanaryConfig, w: Window, challenger: str) -> float | None:
        """The challenger's mean volume by the first KPI's or SLO's `volume_query` (the requests
        behind its values, split by version) that reads; None when none does."""
        for query in filter(None, [*(k.volume_query for k in m.kpis), *(s.volume_query for s in m.slos)]):
            if self._unsplit(query, c, w):  # answers for any version: it would say "served" for none
                continue
            values, _ = self._series(query, c, c.label_value(challenger), w, "volume (challenger)")
            finite = values[np.isfinite(values)] if values is not None else np.array([])
            if len(finite):
                return float(np.mean(finite))
        return None

    def _split(self, query: str, c: CanaryConfig, label_value: str) -> tuple[str, float]:
        """The query with the version label, and its step (PromQLSyntaxError: it cannot be read)."""
        return with_matcher(query, c.version_label, label_value), max(self.step, longest_range(query))

    def _unsplit(self, query: str, c: CanaryConfig, w: Window) -> str:
        """Why the query cannot be split by version ("" when it can, or when Prometheus cannot
        say: the metric's own queries then report it). A query answering for a version that
        does not exist (`... or vector(0)`) gives a challenger without series (no traffic
        yet, the label missing) that answer at every step: a 0 judged as a real score.
        Asked once per query, not every cycle."""
        key = (query, c.version_label)
        if key not in self._split_checked:
            why = self._probe_split(query, c, w)
            if why is not None:
                self._split_checked[key] = why
        return self._split_checked.get(key, "")

    def _probe_split(self, query: str, c: CanaryConfig, w: Window) -> str | None:
        """`_unsplit`'s answer, or None when Prometheus could not give one (asked again next cycle)."""
        try:
            probe, step = self._split(query, c, NO_SUCH_VERSION)
        except PromQLSyntaxError as e:
            return f"the version label cannot be added to the query: {e}"
        try:
            found = self.prometheus.query_range(probe, w.start, w.t, step=step, name="version split check")
        except (SourceUnavailable, QueryError):
            return None
        if not any(not x.empty for x in found):
            return ""
        return (f"the query answers for a version that does not exist ({c.version_label}=\"{NO_SUCH_VERSION}\", "
                "e.g. through `or vector(0)`): a version without series would be judged on that answer; "
                "make the query return no data for a version without series")

    def _traffic_short(self, c: CanaryConfig, w: Window, challenger: str) -> str:
        """Why the challenger's traffic is too little to judge ("" when it is enough or not configured)."""
        if c.traffic_query is None:
            return ""
        values, err = self._series(c.traffic_query, c, c.label_value(challenger), w, "traffic (challenger)")
        if values is None:
            return f"challenger traffic unknown: {err}"
        finite = values[np.isfinite(values)]
        mean = float(np.mean(finite)) if len(finite) else 0.0
        if mean < c.min_traffic or mean <= 0:
            return f"challenger traffic {mean:.3g}/s < {c.min_traffic:g}/s needed"
        return ""

    def _distribution_verdicts(self, m: ModelConfig, c: CanaryConfig, policy: PolicyConfig,
                               samples: pd.DataFrame | None, champion: str | None, challenger: str
                               ) -> list[MetricVerdict]:
        """Each feature and the prediction: the challenger's rows against the champion's,
        by the drift detector's effect size (the policy's statistic)."""
        specs = feature_specs(m)
        if c.version_column is None or not specs:
            return []
        stat = policy.drift_statistic
        have = samples is not None and len(samples) > 0 and c.version_column in samples.columns
        if not have or champion is None:
            return [distribution_verdict(s.name, stat, None, c.distribution_threshold, c.distribution_marginal,
                                         0, 0, policy.min_samples) for s in specs]
        assert samples is not None
        # Named as the registry, the metrics' label value or performance.version_value writes it.
        column = samples[c.version_column]
        base, cand = samples[naming(m, column, champion)], samples[naming(m, column, challenger)]
        if len(base) < policy.min_samples or len(cand) < policy.min_samples:
            return [distribution_verdict(s.name, stat, None, c.distribution_threshold, c.distribution_marginal,
                                         len(base), len(cand), policy.min_samples) for s in specs]
        detector = DriftDetector(DriftParams(features=tuple(specs), statistic=stat, threshold=c.distribution_threshold,
                                             min_samples=policy.min_samples, model=m.name,
                                             prediction_column=m.prediction_column))
        report = detector.assess(detector.fit(base), cand, 0.0, 1.0)
        out = []
        for fd in report.features:
            name = statistic_for(fd, stat)
            value = fd.statistics.get(name) if fd.enough_data else None
            out.append(distribution_verdict(fd.feature, name, value, c.distribution_threshold,
                                            c.distribution_marginal, fd.n_reference, fd.n_current,
                                            policy.min_samples))
        return out

    @staticmethod
    def _finding(m: ModelConfig, w: Window, champion: str | None, challenger: str, v: MetricVerdict,
                 verdict: CanaryVerdict) -> Finding:
        """A failed metric as the incident shows it: the challenger's value next to the
        champion's and the threshold it crossed."""
        absolute = "absolute rule" in v.reason
        threshold = (v.fail_above if v.fail_above is not None else v.fail_below) if absolute else v.fail_effect
        value = v.challenger_mean if absolute else v.effect
        return Finding(kind=FindingKind.CANARY_FAIL, entity=v.metric, model=m.name,
                       value=float(value) if value is not None else 0.0,
                       threshold=float(threshold) if threshold is not None else 0.0,
                       baseline=v.champion, window_start=w.start, window_end=w.t, onset=w.t, score=0.9,
                       statistic="absolute" if absolute else ("effect" if v.kind == "metric" else "distribution"),
                       message=f"canary v{challenger} vs champion v{champion}: {v.metric} failed: {v.reason}",
                       evidence={"challenger_version": challenger, "champion_version": champion,
                                 "verdict_table": [x.to_dict() for x in verdict.metrics]})

    # ------------------------------------------------------------------ act
    def act(self, m: ModelConfig, judged: CanaryJudgement, incident_id: int | None, policy: PolicyConfig,
            t: float, findings: Sequence[Finding] = ()) -> dict[str, Any] | None:
        """Record the verdict; pull a failed challenger, promote (or suggest) a steady one
        (`findings`: the cycle's; a drop of the challenger's own performance holds it back,
        a realised one pulls it)."""
        c = m.canary
        assert c is not None
        overall = judged.verdict.overall
        held = performance_hold(findings, judged.challenger, c.label_value(judged.challenger))
        critical, held = accuracy_grounds(findings, judged.challenger, c.label_value(judged.challenger), held,
                                          judged.since)
        self._export(m, judged.verdict)
        with self.store.tx() as s:
            before = last_verdict_of(s, m.name, judged.challenger)
            s.add(CanaryVerdictRow(model=m.name, t=t, champion_version=judged.champion,
                                   challenger_version=judged.challenger, overall=str(overall),
                                   metrics=[v.to_dict() for v in judged.verdict.metrics]))
            run = run_row(s, m.name, judged.challenger, t)
            if run.status == "pulled" and not open_intents(s, m.name):  # its pull is over: set again, a new run
                run.status, run.pass_streak, run.detail = "running", 0, SET_AGAIN
            run.detail = set_again_detail(judged.since, run.detail)  # as this cycle judged it: its pulls age
            run.cycles += 1
            # Passes against another champion (rolled back or deployed since) are no evidence
            # against this one: the run of passes starts again.
            kept = run.pass_streak if before is None or before.champion_version == judged.champion else 0
            run.pass_streak = kept + 1 if overall == Verdict.PASS and not held else 0
            run.updated_at, run.detail = t, detail_after_hold(held, run.detail, judged.challenger)
            status, streak = run.status, run.pass_streak
        # A pull a dry run only recorded is asked for real once dry_run is off.
        # A promoted version left on the alias once the champion moved back from it: pulled on a fail, never promoted.
        pullable = ("running", "suggested", "promoted", *(() if policy.rollback.dry_run else ("dry_run",)))
        if (overall == Verdict.FAIL or critical) and c.pull and status in pullable:
            return self._pull(m, judged, incident_id, policy, t, critical)
        if streak < c.promote_after_cycles or judged.champion is None:
            return None
        # Neither promoted nor suggested: a version an open or recent incident blames (nor a rollback target).
        if status not in ("running", "suggested") or promotion_blame(self.store, m, judged.challenger,
                                                                      policy.rollback, t):
            return None
        if c.auto_promote:  # as the suggestion says: "or set auto_promote"
            return self._promote(m, judged, streak, policy, t)
        return self._suggest(m, judged, streak, t) if status == "running" else None

    def _export(self, m: ModelConfig, verdict: CanaryVerdict) -> None:
        values = {(v.metric, role): value for v in verdict.metrics
                  for role, value in (("champion", v.champion), ("challenger", v.challenger)) if value is not None}
        effects = {v.metric: v.effect for v in verdict.metrics if v.effect is not None and np.isfinite(v.effect)}
        verdicts = {v.metric: float(v.verdict.rank) for v in verdict.metrics}
        self.metrics.publish_canary(m.name, values, effects, {**verdicts, "_overall": float(verdict.overall.rank)})

    def _pull(self, m: ModelConfig, judged: CanaryJudgement, incident_id: int | None, policy: PolicyConfig,
              t: float, critical: str = "") -> dict[str, Any]:
        failed = "; ".join([f"{v.metric}: {v.reason}" for v in judged.verdict.failed] + [critical] * bool(critical))
        reason = f"canary v{judged.challenger} failed: {failed}"
        outcome = self.runner.request(RollbackAsk(
            m, judged.champion or "?", reason, "vigil", incident_id, t,
            dry_run=policy.rollback.dry_run, max_attempts=policy.rollback.max_attempts, kind=CANARY_PULL,
            # only the judged challenger: a new one set since the verdict keeps its alias
            from_version=judged.challenger, only_from=judged.challenger))
        # A dry run is recorded once, not once per failing cycle; the run names why, not only what moved.
        if under_way(outcome) or outcome.status == ActionStatus.DRY_RUN:
            status = "pulled" if under_way(outcome) else "dry_run"
            self._set_status(m, judged.challenger, status, f"{reason} -> {outcome.detail}", t)
        log.info("canary pull %s", outcome.status, extra={"model": m.name, "challenger": judged.challenger})
        return {"kind": CANARY_PULL, "status": outcome.status, "from_version": outcome.from_version,
                "to_version": outcome.to_version, "detail": outcome.detail}

    def _promote(self, m: ModelConfig, judged: CanaryJudgement, streak: int, policy: PolicyConfig, t: float
                 ) -> dict[str, Any] | None:
        if policy.rollback.dry_run and any(  # said once, as a dry-run pull is; not recorded every cycle
                a.kind == CANARY_PROMOTE and a.dry_run and (a.from_version, a.to_version) ==
                (judged.champion, judged.challenger) for a in self.store.actions(model=m.name)):
            return None
        outcome = self.runner.request(RollbackAsk(
            m, judged.challenger, f"canary v{judged.challenger} passed {streak} cycles in a row", "vigil", None, t,
            dry_run=policy.rollback.dry_run, max_attempts=policy.rollback.max_attempts, kind=CANARY_PROMOTE,
            # only over the champion it was judged against: one moved since was never compared
            from_version=judged.champion, only_from=judged.champion))
        if under_way(outcome):
            self._set_status(m, judged.challenger, "promoted", outcome.detail, t)
        return {"kind": CANARY_PROMOTE, "status": outcome.status, "from_version": outcome.from_version,
                "to_version": outcome.to_version, "detail": outcome.detail}

    def _suggest(self, m: ModelConfig, judged: CanaryJudgement, streak: int, t: float) -> dict[str, Any]:
        """Once per challenger version: a message and an audit entry, nothing moves."""
        reason = f"canary v{judged.challenger} passed {streak} cycles in a row against v{judged.champion}"
        detail = (f"promote with POST /v1/models/{m.name}/rollback {{\"to_version\": \"{judged.challenger}\"}} "
                  f"or set canary.auto_promote")
        payload = {"kind": "promotion_suggested", "model": m.name, "from_version": judged.champion,
                   "to_version": judged.challenger, "at": t, "status": "suggested", "reason": reason,
                   "actor": "vigil", "detail": detail, "incident_id": None, "dry_run": False}

        def once() -> dict[str, Any]:
            with self.store.tx() as s:
                run = run_row(s, m.name, judged.challenger, t)
                if run.status != "running":
                    return payload
                run.status, run.detail = "suggested", reason
                self.outbox.rollback(s, m.name, payload, t, key=f"canary-suggest:{judged.challenger}")
                self.store.audit_in(s, "vigil", "canary.promotion_suggested", f"model:{m.name}",
                                    {"challenger_version": judged.challenger, "champion_version": judged.champion,
                                     "pass_streak": streak}, now=t)
            return payload

        # Another replica's audit entry can take our seq: the transaction is written again.
        return retry_audited(once, "record a promotion suggestion")

    def _set_status(self, m: ModelConfig, version: str, status: str, detail: str, t: float) -> None:
        with self.store.tx() as s:
            run = run_row(s, m.name, version, t)
            run.status, run.detail, run.updated_at = status, detail, t
