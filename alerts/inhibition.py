"""Inhibition rules in Alertmanager's shape: while an alert matching `source_matchers`
fires, alerts matching `target_matchers` that carry the same values for every label in
`equal` are muted (an alert never inhibits itself, nor one on both sides of a rule another
on both sides, as in Alertmanager).

The defaults (used when vigil.yaml sets no `inhibit_rules`):

- a source Vigil cannot reach inhibits each model's incident that is only no-data from
  that source (one "Prometheus is down" page, not one per model). The outage is itself
  the shared cause of those incidents, so it pages, once: blind is never silent;
- a critical alert inhibits a warning of the same model;
- a shared cause (several models' incidents grouped under one top cause) inhibits its
  members' own pages: the group pages once, for all of them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alerts.labels import MODEL_INCIDENT, SHARED_CAUSE, SOURCE_UNAVAILABLE
from alerts.matchers import Labels, Matcher, MatchOp, label_key, matches_all


@dataclass(frozen=True)
class InhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()
    name: str = ""

    def inhibits(self, source: Labels, target: Labels) -> bool:
        return (matches_all(self.source_matchers, source) and matches_all(self.target_matchers, target)
                and label_key(source, self.equal) == label_key(target, self.equal))

    def describe(self) -> str:
        src = ", ".join(map(str, self.source_matchers))
        return self.name or f"inhibit rule [{src}]"


def default_rules(group_by: Sequence[str] = ("cause_kind", "cause")) -> tuple[InhibitRule, ...]:
    """The defaults; a shared cause inhibits the incidents that carry its `group_by` values
    (its members), not another group's models that share only its cause."""
    extra = tuple(n for n in dict.fromkeys(group_by) if n not in ("cause_kind", "cause"))
    return (
        InhibitRule((Matcher("alertname", MatchOp.EQ, SHARED_CAUSE),
                     Matcher("cause_kind", MatchOp.EQ, SOURCE_UNAVAILABLE)),
                    (Matcher("alertname", MatchOp.EQ, MODEL_INCIDENT), Matcher("kinds", MatchOp.EQ, "no_data")),
                    ("cause", *extra), "a source outage inhibits each model's no-data from it"),
        InhibitRule((Matcher("severity", MatchOp.EQ, "critical"),), (Matcher("severity", MatchOp.EQ, "warning"),),
                    ("model",), "critical inhibits the same model's warning"),
        InhibitRule((Matcher("alertname", MatchOp.EQ, SHARED_CAUSE),),
                    (Matcher("alertname", MatchOp.EQ, MODEL_INCIDENT),), tuple(dict.fromkeys(group_by)),
                    "shared cause inhibits its members' own pages"),
    )


DEFAULT_RULES: tuple[InhibitRule, ...] = default_rules()


@dataclass(frozen=True)
class Inhibition:
    rule: InhibitRule
    source: Labels

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in self.source.items() if k in ("alertname", "source", "cause", "model"))
        return f"inhibited by {what} ({self.rule.describe()})"


def inhibitor(target: Labels, firing: Iterable[Labels], rules: Sequence[InhibitRule]) -> Inhibition | None:
    """The first firing alert that inhibits `target` under `rules`, or None."""
    others = [f for f in firing if f is not target and dict(f) != dict(target)]
    for rule in rules:
        # Alertmanager: for a target on both sides of the rule, sources on both sides too are
        # left out, else two such alerts (two criticals of one team) mute each other and
        # neither pages anyone.
        both = matches_all(rule.source_matchers, target)
        for src in others:
            if both and matches_all(rule.target_matchers, src):
                continue
            if rule.inhibits(src, target):
                return Inhibition(rule, src)
    return None
