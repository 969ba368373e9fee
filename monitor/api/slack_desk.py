"""What happens after Slack got its 200 for a button press: who pressed, may they, do it,
show it.

1. Authorise: the model's `slack_actors` (else `slack.actors`) must list the user, or a
   user group they belong to (`usergroups.users.list`, cached a minute). A rollback
   takes the `rollback:` list when one is given. A refusal is audited and told to the
   person (ephemeral), naming who may.
2. Act: `Operator.slack_action` (ack, silence, guarded rollback), audited as
   `slack:U123 (name)`.
3. Show: the outbox is delivered at once, so the incident message is updated in place
   (`chat.update`) and a rollback gets its thread reply; the result goes to the person
   through the press's `response_url`.

A slash command (`/vigil silence …`, monitor/api/slack_silences.py) runs on the same
worker; the request waits for it up to a budget under Slack's 3 s and answers with its
result, or says it is on it and the result follows through `response_url`.

All of it runs on the app's `BoundedWorker`, never on the request: a registry that
takes 5 s holds up one worker thread, not the answer to Slack nor `/healthz`.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from slack_sdk import WebClient

from alerts.slack_actions import SlackAction
from alerts.slack_authz import SlackPeople, UsergroupMembers, permit
from alerts.slack_commands import SilenceCommand, SlackCommand
from alerts.slack_web import group_fetcher, reply_ephemeral
from monitor.api import slack_silences
from monitor.api.worker import BoundedWorker
from monitor.config import SlackConfig, VigilConfig
from monitor.vigil import Vigil

log = logging.getLogger("vigil.api")
VERBS = {"ack": "acknowledge", "silence": "silence", "rollback": "roll back"}


def people_for(config: VigilConfig, action: SlackAction) -> SlackPeople:
    """Who may press `action` on its model: the model's list, else the global one; empty when none is set."""
    model = next((m for m in config.models if m.name == action.model), None)
    actors = (model.slack_actors if model is not None else None) or config.slack.actors
    if actors is None:
        return SlackPeople()
    chosen = actors.rollback if action.action_id == "rollback" and actors.rollback is not None else actors
    return SlackPeople(tuple(chosen.users), tuple(chosen.groups))


class SlackDesk:
    def __init__(self, vigil_of: Callable[[], Vigil], worker: BoundedWorker | None = None) -> None:
        self._vigil_of = vigil_of  # read per press: a reload swaps the Vigil
        self.worker = worker or BoundedWorker("vigil-slack")
        self._lock = threading.Lock()
        self._members: tuple[SlackConfig, UsergroupMembers] | None = None

    def accept(self, action: SlackAction) -> bool:
        """Queue the press; False when the worker is full (the caller says busy)."""
        label = f"slack {action.action_id} on incident {action.incident_id} by {action.user_id}"
        return self.worker.submit(lambda: self.handle(action), label, on_drop=lambda: self._dropped(action))

    def _dropped(self, action: SlackAction) -> None:
        """The press was still queued when Vigil stopped: it was told "On it", so say it was not done."""
        if action.response_url:
            reply_ephemeral(action.response_url,
                            f"Vigil was stopping (a restart or a deploy) before it could {VERBS[action.action_id]} "
                            f"incident {action.incident_id}: nothing was done; press again.",
                            self._vigil_of().config.slack.timeout_s)

    def command(self, cmd: SlackCommand, ask: SilenceCommand, budget_s: float) -> str:
        """Run a slash command on the worker; its answer when done within `budget_s` (Slack
        shows the HTTP answer), else a note, and the answer follows through response_url."""
        box = _Answer()

        def job() -> None:
            vigil = self._vigil_of()
            try:
                text = slack_silences.run(vigil, cmd, ask, self._groups(vigil.config.slack))
            except Exception:  # said instead of the answer, or the person waits for one that never comes
                rid = uuid.uuid4().hex[:12]
                log.exception("slack %s silence %s by %s failed", cmd.command, ask.verb, cmd.user_id,
                              extra={"request_id": rid})
                text = f"Vigil failed to do silence {ask.verb} (error {rid} in its log): try again in a minute."
            if not box.give(text) and cmd.response_url:
                reply_ephemeral(cmd.response_url, text, vigil.config.slack.timeout_s)

        def dropped() -> None:
            text = f"Vigil was stopping (a restart or a deploy) before it could do silence {ask.verb}: try again."
            if not box.give(text) and cmd.response_url:
                reply_ephemeral(cmd.response_url, text, self._vigil_of().config.slack.timeout_s)

        if not self.worker.submit(job, f"slack {cmd.command} silence {ask.verb} by {cmd.user_id}", dropped):
            return "Vigil is busy with other Slack requests: try again in a minute."
        text = box.take(budget_s)
        return text if text is not None else f"On it: silence {ask.verb}; the result follows here."

    def handle(self, action: SlackAction) -> None:
        vigil = self._vigil_of()
        try:
            text = self._refusal(vigil, action)
            if text is None:
                text = vigil.operator.slack_action(action, time.time())
                _deliver(vigil)
        except Exception:  # the person was told "the result follows here": it must, failure included
            rid = uuid.uuid4().hex[:12]
            log.exception("slack %s on incident %s by %s failed", action.action_id, action.incident_id,
                          action.user_id, extra={"request_id": rid})
            text = (f"Vigil failed to {VERBS[action.action_id]} incident {action.incident_id} (error {rid} in "
                    "its log): press again in a minute; the incident's actions show whether anything changed.")
        if action.response_url:
            reply_ephemeral(action.response_url, text, vigil.config.slack.timeout_s)

    def _refusal(self, vigil: Vigil, action: SlackAction) -> str | None:
        """None when the person may; else what they are told (and the audit log records)."""
        people = people_for(vigil.config, action)
        what = f"{VERBS[action.action_id]} incident {action.incident_id} of {action.model}"
        if not people:
            text = (f"No one may {what} from Slack: Vigil's config lists no Slack users or groups for it "
                    "(models[].slack_actors or slack.actors).")
            why = "no slack_actors configured"
        else:
            verdict = permit(action.user_id, people, self._groups(vigil.config.slack))
            if verdict.allowed:
                return None
            text = f"You may not {what} from Slack: that needs {people.mention()}."
            why = verdict.why
            text += f" ({why})" if why else ""
        vigil.store.audit(action.actor, "slack.refused", f"incident:{action.incident_id}",
                          {"model": action.model, "action": action.action_id, "users": list(people.users),
                           "groups": list(people.groups), "why": why}, now=time.time())
        return text

    def _groups(self, slack: SlackConfig) -> UsergroupMembers:
        """The membership cache for this Slack configuration (a reload with a new token starts afresh)."""
        with self._lock:
            if self._members is None or self._members[0] is not slack:
                client = (WebClient(token=slack.bot_token, base_url=slack.base_url.rstrip("/") + "/",
                                    timeout=int(max(1, slack.timeout_s)))
                          if slack.bot_token else None)
                self._members = (slack, UsergroupMembers(group_fetcher(client)))
            return self._members[1]


class _Answer:
    """A slash command's answer, handed over once: to the HTTP reply if it is still
    waiting, else (too late) the job sends it through response_url itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._text: str | None = None
        self._late = False

    def give(self, text: str) -> bool:
        with self._lock:
            if self._late:
                return False
            self._text = text
        self._ready.set()
        return True

    def take(self, timeout: float) -> str | None:
        self._ready.wait(timeout)
        with self._lock:
            if self._text is None:
                self._late = True
            return self._text


def _deliver(vigil: Vigil) -> None:
    """Send the action's messages now rather than at the sender's next round."""
    try:
        vigil.deliver()
    except Exception:  # the action stands; its messages wait in the outbox for the next round
        log.exception("outbox delivery after a Slack action failed")
