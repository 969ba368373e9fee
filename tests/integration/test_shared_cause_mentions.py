"""A shared cause's page @-mentions, in each channel, the on-call of every member routed
there (README: "@-mentions configured per severity, globally or per model"), not only the
first member's."""
from __future__ import annotations

from alerts.outbox import DeliveryResult, DeliveryStatus, OutboxMessage
from tests.helpers_vigil import T0, make_vigil, model_config
from tests.integration.test_shared_cause import RANKING, _Sink, config, cycles, prometheus, registry

GPU = {"selector": 'Hostname="gpu-node-1"'}


class _RefSink:
    """Delivers and says where, as Slack and the JSON-lines sink do (the message's ref)."""

    name = "sink"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": message.payload.get("channel"),
                                                              "ts": str(message.id)})


def test_each_models_oncall_is_mentioned_on_the_shared_cause_page(tmp_path):
    models = [model_config(gpu=GPU, mentions={"critical": ["<!subteam^S0RECSYS>"]}),
              model_config("ranker", gpu=GPU, owner_channel=RANKING, mentions={"critical": ["<!subteam^S0RANKER>"]})]
    vigil = make_vigil(config(tmp_path, models=models), prometheus=prometheus(), registry=registry(),
                       notifiers={"sink": _Sink()})
    cycles(vigil, [T0, T0 + 60, T0 + 120])
    msgs = [m for m in vigil.store.outbox_for_prefix("group:1") if m.kind == "group"]
    print([(m.payload["channel"], m.payload["severity"], m.payload["mentions"]) for m in msgs])
    in_ranking = [m for m in msgs if m.payload["channel"] == RANKING]
    assert in_ranking and in_ranking[0].payload["severity"] == "critical"
    mentioned = {m.payload["channel"]: m.payload["mentions"] for m in msgs}
    assert "<!subteam^S0RANKER>" in mentioned[RANKING], "the ranker's on-call is not mentioned"
    assert "<!subteam^S0RECSYS>" in mentioned["#recsys-alerts"], \
        "the recommender's channel gets the shared cause's critical page, @-mentioning only the ranker's team"


def test_a_shared_cause_repeat_reminds_in_the_thread_not_only_by_an_edit(tmp_path):
    """grouping.repeat_interval repeats an unchanged group's page: an edit of its message
    tells no one in Slack, so the reminder is a reply in its thread with the mentions."""
    models = [model_config(gpu=GPU, mentions={"critical": ["<!subteam^S0RECSYS>"]}),
              model_config("ranker", gpu=GPU, owner_channel=RANKING)]
    vigil = make_vigil(config(tmp_path, models=models, grouping={"repeat_interval": "10m"}), prometheus=prometheus(),
                       registry=registry(), notifiers={"sink": _Sink()})
    cycles(vigil, [T0 + 60 * k for k in range(18)])
    replies = [m.payload for m in vigil.store.outbox_for_prefix("group:1") if m.kind == "reply"]
    assert [p for p in replies if p["change"] == "repeated" and p["channel"] == "#recsys-alerts"
            and "<!subteam^S0RECSYS>" in p["mentions"]], [(p["change"], p["channel"]) for p in replies]


def test_a_shared_cause_resolve_goes_only_where_it_was_told(tmp_path):
    """Paged as a warning, the shared cause turns critical within group_interval (not told
    yet) and resolves: the on-call channel, never told of it, gets no "resolved" message
    for it, and the owners' thread replies do not @-mention the on-call for its end."""
    models = [model_config(gpu=GPU, mentions={"critical": ["<!subteam^S0ONCALL>"]}),
              model_config("ranker", gpu=GPU, owner_channel=RANKING)]
    cfg = config(tmp_path, models=models, grouping={"group_wait": "0s", "group_interval": "10m"})
    vigil = make_vigil(cfg, prometheus=prometheus(T0 + 90), registry=registry(), notifiers={"sink": _RefSink()})
    cycles(vigil, [T0 + 60 * k for k in range(7)])
    rows = vigil.store.outbox_for_prefix("group:1")
    assert [m.payload["severity"] for m in rows if m.payload.get("change") == "first"] == ["warning", "warning"]
    assert [m.payload.get("status") for m in rows if m.kind == "group"][-1] == "resolved"
    assert not [m for m in rows if m.payload.get("channel") == "#ml-oncall"], \
        "the on-call channel got a resolve of a shared cause it was never told of"
    resolved = [m.payload for m in rows if m.kind == "reply" and m.payload["change"] == "resolved"]
    assert resolved and not any("<!subteam^S0ONCALL>" in p["mentions"] for p in resolved)


def test_a_shared_cause_whose_members_are_all_acknowledged_is_not_repeated_in_the_thread(tmp_path):
    """A repeat reminds of what nobody took (README: repeat_interval is for an
    unacknowledged incident): once every open member's incident is acknowledged, the shared
    cause's repeat no longer @-mentions the on-call in its thread every repeat_interval."""
    models = [model_config(gpu=GPU, mentions={"critical": ["<!subteam^S0RECSYS>"]}),
              model_config("ranker", gpu=GPU, owner_channel=RANKING)]
    vigil = make_vigil(config(tmp_path, models=models, grouping={"repeat_interval": "10m"}), prometheus=prometheus(),
                       registry=registry(), notifiers={"sink": _RefSink()})
    cycles(vigil, [T0 + 60 * k for k in range(3)])
    for row in vigil.store.incidents():
        vigil.operator.acknowledge(row.id, "api:olga", T0 + 150)
    cycles(vigil, [T0 + 60 * k for k in range(3, 30)])
    replies = [m.payload for m in vigil.store.outbox_for_prefix("group:1") if m.kind == "reply"]
    assert not [p for p in replies if p["change"] == "repeated"], \
        [(p["change"], p["channel"], p["mentions"]) for p in replies]
