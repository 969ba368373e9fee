"""A shared cause's page @-mentions, in each channel, the on-call of every member routed
there (README: "@-mentions configured per severity, globally or per model"), not only the
first member's."""
from __future__ import annotations

from tests.helpers_vigil import T0, make_vigil, model_config
from tests.integration.test_shared_cause import RANKING, _Sink, config, cycles, prometheus, registry

GPU = {"selector": 'Hostname="gpu-node-1"'}


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
