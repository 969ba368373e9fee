"""State changes that notify: an escalation and a resolve post a reply in the incident
message's thread (with the @-mentions configured per severity) and edit the message,
as a person on call sees it in Slack."""
from __future__ import annotations

import pytest

from alerts.slack import SlackNotifier
from monitor.vigil import Vigil
from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import ONCALL, OWNER, T0, incident_prometheus, make_config, make_vigil, model_config

pytestmark = pytest.mark.integration
TOKEN = "xoxb-threads-test"


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN, channels=(OWNER.lstrip("#"), ONCALL.lstrip("#"))) as fake:
        yield fake


def vigil_on(tmp_path, fake: FakeSlack, **sections) -> Vigil:
    cfg = make_config(tmp_path, **sections)
    notifier = SlackNotifier(TOKEN, base_url=fake.base_url, max_rate_limit_retries=0, timeout_s=5.0)
    return make_vigil(cfg, prometheus=incident_prometheus(bad_until=T0 + 120), notifiers={"slack": notifier})


def cycle(vigil: Vigil, t: float) -> str:
    report = vigil.run_cycle("recommender", t)
    for _ in range(5):
        if vigil.deliver(t) == 0:
            break
    return report.step


def test_escalation_and_resolve_reply_in_the_thread_with_mentions_and_edit_the_parent(tmp_path, slack):
    vigil = vigil_on(tmp_path, slack, mentions={"critical": ["<!subteam^S0ONCALL>"], "warning": ["U0OWNER"]})
    assert cycle(vigil, T0) == "open"  # CTR down 10 %: a warning to the owner
    (parent,) = slack.messages(OWNER)
    assert slack.thread(OWNER, parent.ts) == []
    assert cycle(vigil, T0 + 60) == "update"  # the SLO breached twice in a row: critical

    (reply,) = slack.thread(OWNER, parent.ts)
    assert "escalated to *critical* (was warning)" in reply.text
    assert "<!subteam^S0ONCALL>" in reply.text  # the on-call user group is notified, not just an edit
    assert reply.reply_broadcast  # an escalation is a page: also shown in the channel
    assert parent.updates >= 1 and "CRITICAL" in str(parent.versions[-1]).upper()
    # the on-call channel's first message is itself the page: no reply there
    (oncall_parent,) = [m for m in slack.messages(ONCALL) if not m.thread_ts]
    assert slack.thread(ONCALL, oncall_parent.ts) == []

    for t in (T0 + 720, T0 + 780):  # signals back to normal for two cycles: resolved
        cycle(vigil, t)
    owner_thread = slack.thread(OWNER, parent.ts)
    assert [("escalated" in m.text, "resolved" in m.text) for m in owner_thread] == [(True, False), (False, True)]
    resolved = owner_thread[-1]
    assert "<!subteam^S0ONCALL>" in resolved.text  # the incident was critical: its mentions
    (oncall_reply,) = slack.thread(ONCALL, oncall_parent.ts)
    assert "resolved" in oncall_reply.text
    assert "RESOLVED" in str(parent.versions[-1]).upper()
    # what a Slack client reads back: the parent carries its thread, the replies are in it
    from slack_sdk import WebClient

    client = WebClient(token=TOKEN, base_url=slack.base_url)
    cid = slack.channel_id(OWNER)
    top = client.conversations_history(channel=cid)["messages"]
    shown = next(m for m in top if m["ts"] == parent.ts)
    assert (shown["reply_count"], shown["latest_reply"], shown["thread_ts"]) == (2, owner_thread[-1].ts, parent.ts)
    assert [m["subtype"] for m in top if m["ts"] != parent.ts] == ["thread_broadcast"]  # the escalation, broadcast
    replies = client.conversations_replies(channel=cid, ts=parent.ts)["messages"]
    assert [m["ts"] for m in replies] == [parent.ts] + [m.ts for m in owner_thread]


def test_per_model_mentions_override_the_global_ones(tmp_path, slack):
    vigil = vigil_on(tmp_path, slack, mentions={"critical": ["<!subteam^S0GLOBAL>"]},
                     models=[model_config(mentions={"critical": ["<@U0RECSYS>"]})])
    cycle(vigil, T0)
    cycle(vigil, T0 + 60)
    (parent,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
    (reply,) = slack.thread(OWNER, parent.ts)
    assert "<@U0RECSYS>" in reply.text and "S0GLOBAL" not in reply.text


def test_a_mention_in_the_wrong_form_is_refused_by_the_config(tmp_path):
    from monitor.config import ConfigError

    with pytest.raises(ConfigError, match=r"mentions.critical.0.*<@U…>"):
        make_config(tmp_path, mentions={"critical": ["@oncall"]})


def test_an_escalation_under_a_silence_is_told_as_an_escalation_once_the_silence_ends(tmp_path, slack):
    """Told of a warning, then silenced (a silence that starts later), the incident turns
    critical: nobody is paged while the silence lasts, and when it ends the on-call hears
    of the escalation in the thread with its mentions, not only by an edit."""
    from monitor.silence_ops import SilenceAsk, create

    cfg = make_config(tmp_path, mentions={"critical": ["<!subteam^S0ONCALL>"]})
    notifier = SlackNotifier(TOKEN, base_url=slack.base_url, max_rate_limit_retries=0, timeout_s=5.0)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_until=T0 + 900), notifiers={"slack": notifier})
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-7", "olga", starts_at=T0 + 30,
                                   ends_at=T0 + 90), "olga", T0 - 10)
    assert cycle(vigil, T0) == "open"  # the silence has not started: the warning is told
    (parent,) = slack.messages(OWNER)
    assert cycle(vigil, T0 + 60) == "update"  # critical, under the silence: nobody paged
    assert slack.thread(OWNER, parent.ts) == [] and slack.messages(ONCALL) == []
    cycle(vigil, T0 + 120)  # the silence is over and it is still critical
    replies = slack.thread(OWNER, parent.ts)
    assert [r.text for r in replies if "escalated to *critical* (was warning)" in r.text and
            "<!subteam^S0ONCALL>" in r.text], f"the escalation was never told: {[r.text for r in replies]}"
    cycle(vigil, T0 + 180)
    assert len(slack.thread(OWNER, parent.ts)) == len(replies), "the escalation was told twice"


def test_a_resolve_goes_only_where_the_incident_was_told(tmp_path, slack):
    """Told of a warning in the owner's channel, it turns critical under a silence and
    resolves before the silence ends: the owner's thread hears it resolved; the on-call
    channel, never told of it, gets no "resolved" for something it never saw."""
    from monitor.silence_ops import SilenceAsk, create

    vigil = vigil_on(tmp_path, slack, mentions={"critical": ["<!subteam^S0ONCALL>"]})
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-8", "olga", starts_at=T0 + 30,
                                   duration="2h"), "olga", T0 - 10)
    assert cycle(vigil, T0) == "open"
    (parent,) = slack.messages(OWNER)
    assert cycle(vigil, T0 + 60) == "update"  # critical, muted
    for t in (T0 + 720, T0 + 780):
        cycle(vigil, t)
    assert vigil.store.incidents()[0].status == "resolved"
    (resolved,) = slack.thread(OWNER, parent.ts)
    assert "resolved" in resolved.text and "S0ONCALL" not in resolved.text, resolved.text
    assert slack.messages(ONCALL) == [], [m.text for m in slack.messages(ONCALL)]


def test_a_resolve_without_an_owner_channel_goes_where_the_warning_went(tmp_path, slack):
    """No owner channel: the warning went to the default channel. Escalated under a silence
    and resolved before it ended, the resolve goes there too, not to the on-call channel."""
    from monitor.silence_ops import SilenceAsk, create

    cfg = make_config(tmp_path, models=[model_config(owner_channel=None)])
    with FakeSlack(token=TOKEN, channels=("vigil-alerts", ONCALL.lstrip("#"))) as fake:
        notifier = SlackNotifier(TOKEN, base_url=fake.base_url, max_rate_limit_retries=0, timeout_s=5.0)
        vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_until=T0 + 120), notifiers={"slack": notifier})
        create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-8", "olga", starts_at=T0 + 30,
                                       duration="2h"), "olga", T0 - 10)
        for t in (T0, T0 + 60, T0 + 720, T0 + 780):
            cycle(vigil, t)
        assert vigil.store.incidents()[0].status == "resolved"
        assert fake.messages("#vigil-alerts") and fake.messages(ONCALL) == [], \
            [m.text for m in fake.messages(ONCALL)]


def test_a_model_routed_nowhere_is_told_in_the_configured_default_channel(tmp_path):
    """`slack.default_channel`: a team whose catch-all channel is not #vigil-alerts gets the
    alerts of models without owner_channel and oncall_channel there (it was hard-coded)."""
    cfg = make_config(tmp_path, models=[model_config(owner_channel=None)],
                      slack={"sink_path": "notifications.jsonl", "default_channel": "#ml-alerts"})
    with FakeSlack(token=TOKEN, channels=("ml-alerts", "vigil-alerts", ONCALL.lstrip("#"))) as fake:
        notifier = SlackNotifier(TOKEN, base_url=fake.base_url, max_rate_limit_retries=0, timeout_s=5.0)
        vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_until=T0 + 120), notifiers={"slack": notifier})
        for t in (T0, T0 + 60):
            cycle(vigil, t)
        assert fake.messages("#ml-alerts") and fake.messages("#vigil-alerts") == [], \
            [m.text for m in fake.messages("#vigil-alerts")]


def test_a_repeat_reminds_in_the_thread_with_mentions_not_only_by_an_edit(tmp_path, slack):
    """repeat_interval re-notifies an unchanged, unacknowledged incident (Alertmanager's
    repeat): Slack tells no one of an edit, so the reminder is a reply with the mentions."""
    vigil = vigil_on(tmp_path, slack, mentions={"critical": ["<!subteam^S0ONCALL>"]},
                     policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"})
    vigil.gather_sources.prometheus = incident_prometheus()  # stays bad
    steps = [cycle(vigil, T0 + 60 * k) for k in range(7)]
    assert steps[:3] == ["open", "update", "unchanged"] and "repeat" in steps, steps
    (parent,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
    texts = [m.text for m in slack.thread(OWNER, parent.ts)]
    assert len(texts) == 2 and "escalated" in texts[0], texts
    assert "still *critical*" in texts[1] and "<!subteam^S0ONCALL>" in texts[1], texts[1]


def test_an_ack_under_a_silence_edits_only_what_was_told(tmp_path, slack):
    """Told of a warning, escalated under a silence, acknowledged while the silence lasts:
    the owner's message shows the ack; the on-call channel, never told (the silence holds
    the escalation back), gets no message from the ack."""
    from monitor.silence_ops import SilenceAsk, create

    vigil = vigil_on(tmp_path, slack)
    vigil.gather_sources.prometheus = incident_prometheus()
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-9", "olga", starts_at=T0 + 30,
                                   duration="2h"), "olga", T0 - 10)
    assert cycle(vigil, T0) == "open"
    assert cycle(vigil, T0 + 60) == "update"  # critical, muted
    row = vigil.store.incidents()[0]
    vigil.operator.acknowledge(row.id, "api:olga", T0 + 90)
    for _ in range(5):
        if vigil.deliver(T0 + 90) == 0:
            break
    (parent,) = slack.messages(OWNER)
    assert "olga" in str(parent.versions[-1])
    assert slack.messages(ONCALL) == [], [m.text for m in slack.messages(ONCALL)]
