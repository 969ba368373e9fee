"""The chaos benchmark's four counts, read from the world after the run and from Vigil's store.

- lost_alerts: a regression with no incident; an incident channel (its owner, and on-call
  when critical, plus any channel an outbox row names) without a top-level Slack message
  for that incident; an outbox row not delivered at the end (pending, sending, failed)
  that the first rule did not already count.
- duplicate_posts: top-level Slack messages beyond the first per incident and channel;
  rollback notices beyond the first per text and channel.
- duplicate_rollbacks: per regression, alias writes beyond the first as the registry proxy
  saw them, or `done` rollback intents beyond the first in the store, whichever is more.
- wrong_rollbacks: alias writes to any version but the known-good one (v1 of a regression),
  any write on a model with no regression, `done` intents likewise (whichever says more),
  and a regression whose alias does not end on the known-good version (it still serves
  the version its incident blames) when no wrong write explains it.

What a model is (regression, harmless deploy, steady) comes from the scenario's plan.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from benchmarks.chaos_proxy import AliasWrite
from benchmarks.chaos_scenario import ONCALL, ModelPlan
from monitor.store.intents import RollbackIntentRow
from monitor.store.repository import IncidentRow, OutboxRow, Store

_INCIDENT = re.compile(r"incident #(\d+)")


@dataclass(frozen=True)
class Post:
    channel: str  # name, with '#'
    top_level: bool
    rollback: bool  # a rollback notice (else an incident message)
    incident_id: int | None
    text: str


@dataclass
class ModelVerdict:
    plan: ModelPlan
    incidents: int = 0
    writes: list[str] = field(default_factory=list)  # versions the alias was set to by Vigil
    done_intents: list[str] = field(default_factory=list)  # to_version of each done intent
    final_alias: str | None = None
    lost: int = 0
    duplicate_rollbacks: int = 0
    wrong_rollbacks: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    lost_alerts: int = 0
    duplicate_posts: int = 0
    duplicate_rollbacks: int = 0
    wrong_rollbacks: int = 0
    # Not one of the four counts: incidents beyond the first for one regression (a clock
    # jump that resolved it early, two replicas opening one each): a second page for one episode.
    extra_incidents: int = 0
    models: list[ModelVerdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost_alerts or self.duplicate_posts or self.duplicate_rollbacks or self.wrong_rollbacks)


def read_posts(messages: list[Any], channel_names: dict[str, str]) -> list[Post]:
    """FakeSlack's messages as posts: which incident, top-level or in a thread, what kind."""
    out = []
    for m in messages:
        first = m.versions[0] if m.versions else {"text": m.text, "blocks": m.blocks}
        text = str(first.get("text") or "")
        found = _INCIDENT.search(json.dumps(first.get("blocks") or []) + " " + text)
        out.append(Post(channel_names.get(m.channel, m.channel), m.thread_ts is None, text.startswith("Rollback of"),
                        int(found.group(1)) if found else None, text))
    return out


@dataclass(frozen=True)
class StoreFacts:
    incidents: list[tuple[int, str, str, float, float | None]]  # id, model, severity, opened_at, resolved_at
    undelivered: list[tuple[str, str]]  # (key, status) of outbox rows not delivered
    outbox_channels: dict[int, set[str]]  # incident id -> channels it has rows for
    done_intents: list[tuple[str, str]]  # (model, to_version)


def read_store(url: str) -> StoreFacts:
    store = Store(url)
    try:
        with store.tx() as s:
            incidents = [(r.id, r.model, str(r.severity), r.opened_at, r.resolved_at)
                         for r in s.scalars(select(IncidentRow).order_by(IncidentRow.id))]
            rows = list(s.execute(select(OutboxRow.key, OutboxRow.status, OutboxRow.notifier)))
            done = [(i.model, i.to_version) for i in s.scalars(select(RollbackIntentRow))
                    if str(i.status) == "done"]
    finally:
        store.close()
    channels: dict[int, set[str]] = {}
    for key, _status, _notifier in rows:
        parts = str(key).split(":", 2)
        if parts[0] == "incident" and len(parts) == 3 and parts[1].isdigit():
            channels.setdefault(int(parts[1]), set()).add(parts[2])
    undelivered = [(str(k), str(st)) for k, st, _n in rows if str(st) != "delivered"]
    return StoreFacts(incidents, undelivered, channels, done)


def _lost(facts: StoreFacts, plans: dict[str, ModelPlan], posts: list[Post], verdict: Verdict) -> None:
    posted = {(p.incident_id, p.channel) for p in posts if p.top_level and not p.rollback}
    missing: set[tuple[int, str]] = set()
    for iid, model, severity, _opened, _resolved in facts.incidents:
        plan = plans.get(model)
        expected = set(facts.outbox_channels.get(iid, set()))
        if plan is not None:
            expected |= {plan.owner_channel} | ({ONCALL} if severity == "critical" else set())
        for ch in sorted(expected - {c for i, c in posted if i == iid}):
            missing.add((iid, ch))
            verdict.notes.append(f"incident #{iid} ({model}, {severity}) never reached {ch}")
    verdict.lost_alerts += len(missing)
    for key, status in facts.undelivered:
        parts = key.split(":", 2)
        if parts[0] == "incident" and len(parts) == 3 and parts[1].isdigit() and (int(parts[1]), parts[2]) in missing:
            continue
        verdict.lost_alerts += 1
        verdict.notes.append(f"outbox row {key} ended {status}")


def _duplicate_posts(posts: list[Post], verdict: Verdict) -> None:
    incidents = Counter((p.incident_id, p.channel) for p in posts if p.top_level and not p.rollback)
    notices = Counter((p.text, p.channel) for p in posts if p.rollback)
    for (iid, ch), n in sorted(incidents.items(), key=str):
        if n > 1:
            verdict.duplicate_posts += n - 1
            verdict.notes.append(f"incident #{iid}: {n} top-level posts in {ch}")
    for (text, ch), n in notices.items():
        if n > 1:
            verdict.duplicate_posts += n - 1
            verdict.notes.append(f"rollback notice posted {n} times in {ch}: {text[:60]}")


def _judge_model(mv: ModelVerdict) -> None:
    p = mv.plan
    if not p.regression:
        mv.wrong_rollbacks = max(len(mv.writes), len(mv.done_intents))
        if mv.wrong_rollbacks:
            mv.notes.append(f"rolled back with no regression: writes {mv.writes}, done intents {mv.done_intents}")
        return
    if mv.incidents == 0:
        mv.lost += 1
        mv.notes.append("no incident for the regression")
    mv.duplicate_rollbacks = max(len(mv.writes) - 1, len(mv.done_intents) - 1, 0)
    wrong = max(sum(v != p.good_version for v in mv.writes), sum(v != p.good_version for v in mv.done_intents))
    if wrong == 0 and mv.final_alias != p.good_version:
        wrong = 1
        blamed = " (the version its incident blames)" if mv.final_alias == p.bad_version else ""
        mv.notes.append(f"alias ends on v{mv.final_alias}{blamed}, not v{p.good_version}")
    mv.wrong_rollbacks = wrong


def judge(plans: list[ModelPlan], facts: StoreFacts, posts: list[Post], moves: list[AliasWrite],
          final_aliases: dict[str, str | None]) -> Verdict:
    verdict = Verdict()
    by_name = {p.name: p for p in plans}
    _lost(facts, by_name, posts, verdict)
    _duplicate_posts(posts, verdict)
    for p in plans:
        mv = ModelVerdict(p, final_alias=final_aliases.get(p.name))
        mv.incidents = sum(1 for _i, model, *_ in facts.incidents if model == p.name)
        mv.writes = [w.version for w in moves if w.model == p.name]
        mv.done_intents = [v for model, v in facts.done_intents if model == p.name]
        _judge_model(mv)
        verdict.lost_alerts += mv.lost
        verdict.duplicate_rollbacks += mv.duplicate_rollbacks
        verdict.wrong_rollbacks += mv.wrong_rollbacks
        if p.regression and mv.incidents > 1:
            verdict.extra_incidents += mv.incidents - 1
            # A second incident for the regression's episode pages people again: a duplicate
            # post to them. Incidents before the deploy (a warning while MLflow was down) are
            # other episodes, reported, not counted.
            episode = sum(1 for _i, model, _s, opened, _r in facts.incidents
                          if model == p.name and p.deploy_at is not None and opened >= p.deploy_at)
            verdict.duplicate_posts += max(episode - 1, 0)
            verdict.notes.append(f"{p.name}: {mv.incidents} incidents for one regression")
        verdict.models.append(mv)
    extra = [i for i, _m, _s, opened, resolved in facts.incidents if resolved is not None and resolved < opened]
    if extra:
        verdict.notes.append(f"incidents resolved before they opened (clock jump): {extra}")
    return verdict
