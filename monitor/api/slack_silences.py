"""`/vigil silence add|list|expire` from Slack, after the signature and the text were
checked (monitor/api/slack.py): who may, do it through the same silence operations as
the API and the CLI (monitor/silence_ops.py: one parser, one store, one audit), and say
what happened in words.

Who may: listing is for anyone who may press a button on some model (`slack.actors` or a
model's `slack_actors`, any of their lists); adding and expiring, which can mute any
model, is for the global `slack.actors` users and groups, Slack's operators. A model's own
`slack_actors` users and groups (not a rollback-only list) add and expire the silences that
are confined to their models, by the rule an API token scoped to models follows
(monitor/model_scope.py): the config already says which people act on which model, so a
second `models:` list per person could only disagree with it. A refusal is audited
(`slack.refused`, target `silences`) and tells the person who may.
"""
from __future__ import annotations

import glob
import time
from collections.abc import Callable

from alerts import wording
from alerts.silences import Silence, SilenceError, SilenceState
from alerts.slack_authz import Permit, SlackPeople, permit
from alerts.slack_commands import SilenceCommand, SlackCommand, matcher_blame
from alerts.slack_text import escape
from monitor import silence_ops
from monitor.config import SlackActorsConfig, VigilConfig
from monitor.model_scope import ModelScope
from monitor.vigil import Vigil

MAX_LISTED = 20  # an ephemeral message stays readable; the API and the CLI page through the rest


def operators(config: VigilConfig) -> SlackPeople:
    """Who may add and expire silences from Slack: the global `slack.actors`."""
    a = config.slack.actors
    return SlackPeople(tuple(a.users), tuple(a.groups)) if a is not None else SlackPeople()


def button_people(config: VigilConfig) -> SlackPeople:
    """Everyone who may press some button: the global list and every model's, with their rollback lists."""
    lists: list[SlackActorsConfig] = [a for a in [config.slack.actors, *(m.slack_actors for m in config.models)]
                                      if a is not None]
    users: list[str] = []
    groups: list[str] = []
    for a in lists:
        for p in (a, a.rollback):
            if p is not None:
                users += [u for u in p.users if u not in users]
                groups += [g for g in p.groups if g not in groups]
    return SlackPeople(tuple(users), tuple(groups))


def actor_scope(config: VigilConfig, user_id: str, members: Callable[[str], frozenset[str]]) -> ModelScope | None:
    """The models whose own `slack_actors` users or groups name the person, as a scope of exact
    names (a name is escaped: `[` in one is that character, not a pattern); None when none do."""
    names = [m.name for m in config.models if m.slack_actors is not None and permit(
        user_id, SlackPeople(tuple(m.slack_actors.users), tuple(m.slack_actors.groups)), members).allowed]
    return ModelScope(tuple(glob.escape(n) for n in names)) if names else None


def build_ask(cmd: SlackCommand, ask: SilenceCommand) -> silence_ops.SilenceAsk:
    comment = ask.comment or f"from Slack by {cmd.user_name}"
    return silence_ops.SilenceAsk(list(ask.matchers), comment, cmd.actor, duration=ask.duration)


def check_add(cmd: SlackCommand, ask: SilenceCommand, now: float) -> str | None:
    """The silence add would make is one that can be made; else what is wrong, naming the matcher."""
    try:
        silence_ops.build(build_ask(cmd, ask), now)
    except SilenceError as e:
        return f"Cannot add that silence: {matcher_blame(e.field, ask.matchers)}: {e.reason}."
    return None


def run(vigil: Vigil, cmd: SlackCommand, ask: SilenceCommand, members: Callable[[str], frozenset[str]]) -> str:
    """Do `ask` for the person who typed it; the text they are shown."""
    now = time.time()
    people = button_people(vigil.config) if ask.verb == "list" else operators(vigil.config)
    verdict = permit(cmd.user_id, people, members) if people else None
    if verdict is None or not verdict.allowed:
        scope = actor_scope(vigil.config, cmd.user_id, members) if ask.verb != "list" else None
        refused = (_outside(vigil, cmd, ask, scope, now) if scope is not None
                   else _refusal(vigil, cmd, ask, people, verdict, now))
        if refused is not None:
            return refused
    tz = vigil.config.messages.time_zone
    if ask.verb == "list":
        return _listing(vigil, ask.state, now, tz)
    if ask.verb == "add":
        try:
            made = silence_ops.create(vigil.store, build_ask(cmd, ask), cmd.actor, now)
        except SilenceError as e:
            return f"Cannot add that silence: {matcher_blame(e.field, ask.matchers)}: {e.reason}."
        return (f"Silence {made.id} added: {_matchers(made)} until {wording.clock(made.ends_at, tz)} "
                f"({wording.duration(made.ends_at - made.starts_at)}), \u201c{escape(made.comment)}\u201d. "
                f"End it early with `/vigil silence expire {made.id}`.")
    assert ask.verb == "expire" and ask.silence_id is not None
    got = silence_ops.expire(vigil.store, ask.silence_id, cmd.actor, now)
    if got is None:
        return f"Silence {ask.silence_id} not found: `/vigil silence list all` shows them."
    return f"Silence {got.id} expired: {_matchers(got)} pages again from the next cycle."


def _refusal(vigil: Vigil, cmd: SlackCommand, ask: SilenceCommand, people: SlackPeople, verdict: Permit | None,
             now: float) -> str:
    """The refusal for someone `people` (whose `verdict` said no, None when there are none) do not name."""
    what = {"list": "list silences", "add": "add silences", "expire": "expire silences"}[ask.verb]
    if verdict is None:
        text = (f"No one may {what} from Slack: Vigil's config lists no Slack users or groups for it "
                "(slack.actors).")
        why = "no slack actors configured"
    else:
        why = verdict.why
        hint = " (or, for a model's own silences, one of its slack_actors)" if ask.verb != "list" else ""
        text = f"You may not {what} from Slack: that needs {people.mention()}{hint}." + (f" ({why})" if why else "")
    vigil.store.audit(cmd.actor, "slack.refused", "silences",
                      {"command": f"{cmd.command} silence {ask.verb}", "users": list(people.users),
                       "groups": list(people.groups), "why": why}, now=now)
    return text


def _outside(vigil: Vigil, cmd: SlackCommand, ask: SilenceCommand, scope: ModelScope, now: float) -> str | None:
    """For a model's own actor: what is wrong when the silence is not confined to their models."""
    try:
        if ask.verb == "add":
            matchers = silence_ops.parse_matchers(ask.matchers)
        else:
            found = silence_ops.get(vigil.store, ask.silence_id) if ask.silence_id is not None else None
            if found is None:
                return None  # "not found", as for an operator
            matchers = found.matchers
    except SilenceError:
        return None  # a bad matcher is named by `add` itself, for everyone alike
    gap = scope.confinement_gap(matchers)
    if gap is None:
        return None
    vigil.store.audit(cmd.actor, "slack.refused", "silences",
                      {"command": f"{cmd.command} silence {ask.verb}", "models": list(scope.patterns),
                       "matchers": [str(m) for m in matchers], "why": gap}, now=now)
    return (f"You may only {ask.verb} silences confined to the models whose slack_actors list you ({scope}): "
            f"{escape(gap)}.")


def _listing(vigil: Vigil, state: str, now: float, tz: str) -> str:
    items, total = silence_ops.listing(vigil.store, now, None if state == "all" else SilenceState(state),
                                       MAX_LISTED, 0)
    label = "" if state == "all" else f"{state} "
    if not items:
        return f"No {label}silences."
    lines = [f"{total} {label}silence{'s' if total != 1 else ''}"
             + (f" (the newest {MAX_LISTED}; `vigil silence list` or GET /v1/silences has all):"
                if total > len(items) else ":")]
    for s in items:
        lines.append(f"• *{s.id}* {s.state(now)}, {_span(s, now, tz)}: {_matchers(s)} "
                     f"by {escape(s.created_by)}, \u201c{escape(s.comment)}\u201d"
                     + (f"\n    \u26a0\ufe0f {escape(s.problem)}" if s.problem else ""))
    return "\n".join(lines)


def _span(s: Silence, now: float, tz: str) -> str:
    if s.state(now) == SilenceState.PENDING:
        return f"from {wording.clock(s.starts_at, tz)} until {wording.clock(s.ends_at, tz)}"
    return f"{'ended' if s.state(now) == SilenceState.EXPIRED else 'until'} {wording.clock(s.ends_at, tz)}"


def _matchers(s: Silence) -> str:
    # Comments, creators and matchers are whoever made the silence's text: escaped, so
    # `<!channel>` or `<https://x|runbook>` in one shows as written, not as Slack markup.
    return "`" + escape(", ".join(str(m) for m in s.matchers)) + "`"

