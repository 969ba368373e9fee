"""vigil.yaml's alert-lifecycle sections, in Alertmanager's shapes where it has one:
`time_intervals` (named maintenance windows), `inhibit_rules`, `grouping` (one page for
a shared cause) and `mentions` (who a threaded escalation or resolve @-mentions).

    time_intervals:
      - name: weekend-maintenance
        time_intervals:
          - {weekdays: ["saturday"], times: [{start_time: "02:00", end_time: "04:00"}], location: Europe/Berlin}
    inhibit_rules:                    # leave out for the defaults (alerts/inhibition.py); [] for none
      - source_matchers: ['alertname="SourceDown"']
        target_matchers: ['kinds="no_data"']
        equal: [source]
    grouping: {group_wait: 30s, group_interval: 5m, repeat_interval: 4h}
    mentions: {critical: ["<!subteam^S0ONCALL>"], warning: ["<@U0OWNER>"]}
    models:
      - name: recommender
        labels: {team: recsys}
        mute_time_intervals: [weekend-maintenance]
"""
from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from alerts.grouping import DEFAULT_GROUPED, GROUPABLE_CAUSES, GroupSettings
from alerts.inhibition import InhibitRule
from alerts.matchers import MatcherError, parse_matcher
from alerts.time_intervals import IntervalError, NamedIntervals, parse_interval
from monitor.config_types import Duration, PositiveDuration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matcher_text(v: str) -> str:
    try:
        parse_matcher(v)
    except MatcherError as e:
        raise ValueError(e.reason) from None
    return v


MatcherText = Annotated[str, AfterValidator(_matcher_text)]
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InhibitRuleConfig(_Model):
    source_matchers: list[MatcherText] = Field(min_length=1)
    target_matchers: list[MatcherText] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)

    @field_validator("equal")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if not _LABEL.fullmatch(n)]
        if bad:
            raise ValueError(f"expected label names, got {bad[0]!r}")
        return v

    def rule(self) -> InhibitRule:
        return InhibitRule(tuple(map(parse_matcher, self.source_matchers)),
                           tuple(map(parse_matcher, self.target_matchers)), tuple(self.equal))


def _interval(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError("expected a mapping with times, weekdays, days_of_month, months, years or location")
    try:
        parse_interval(v, "time_interval")
    except IntervalError as e:
        raise ValueError(str(e)) from None
    return v


class TimeIntervalSetConfig(_Model):
    name: str = Field(min_length=1, max_length=100)
    time_intervals: list[Annotated[dict[str, Any], AfterValidator(_interval)]] = Field(min_length=1)

    def named(self) -> NamedIntervals:
        return NamedIntervals(self.name, tuple(parse_interval(i) for i in self.time_intervals))


class GroupingConfig(_Model):
    enabled: bool = True
    group_by: list[str] = Field(default_factory=lambda: ["cause_kind", "cause"], min_length=1)
    cause_kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_GROUPED))  # deploy: opt in
    group_wait: Duration = 30.0
    group_interval: Duration = 300.0
    repeat_interval: PositiveDuration = 4 * 3600.0  # 0 (refused, as by Alertmanager) would page every cycle
    min_members: int = Field(2, ge=2)
    mute_time_intervals: list[str] = Field(default_factory=list)

    @field_validator("cause_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in GROUPABLE_CAUSES]
        if bad:
            raise ValueError(f"expected cause kinds among {', '.join(GROUPABLE_CAUSES)}, got {bad[0]!r}")
        return v

    def settings(self) -> GroupSettings:
        return GroupSettings(self.enabled, tuple(self.group_by), tuple(self.cause_kinds), self.group_wait,
                             self.group_interval, self.repeat_interval, self.min_members)


_MENTION = re.compile(r"<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>|<!(here|channel)>")


def _mention(v: str) -> str:
    """`<@U…>` a user, `<!subteam^S…>` a user group; a bare U…/S… id is written out for you."""
    v = v.strip()
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", v):
        return f"<@{v}>"
    if re.fullmatch(r"S[A-Z0-9]{2,}", v):
        return f"<!subteam^{v}>"
    if not _MENTION.fullmatch(v):
        raise ValueError(f"expected a Slack user <@U…>, a user group <!subteam^S…>, <!here> or <!channel>, got {v!r}")
    return v


Mention = Annotated[str, AfterValidator(_mention)]


class MentionsConfig(_Model):
    """Who an escalation or a resolve @-mentions in the incident's thread, per severity."""

    warning: list[Mention] = Field(default_factory=list)
    critical: list[Mention] = Field(default_factory=list)

    def for_severity(self, severity: str | None) -> list[str]:
        return list(self.critical if severity == "critical" else self.warning)
