"""A shared cause is muted only when all its open members are (or in its own maintenance
window): a silence of one model must not silence the page of another on the same saturated
GPU, and models in their maintenance window are not paged through their shared cause."""
from __future__ import annotations

from monitor.silence_ops import SilenceAsk, create
from tests.helpers_vigil import T0, make_vigil, model_config
from tests.integration.test_muting import window_around
from tests.integration.test_shared_cause import RANKING, _Sink, config, cycles, prometheus, registry


def test_silencing_one_member_does_not_mute_the_other_models_page(tmp_path):
    vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining recommender OPS-9", "olga", duration="4h"),
           "olga", T0 - 10)
    cycles(vigil, [T0, T0 + 60, T0 + 120, T0 + 600])
    ranker = [i for i in vigil.store.incidents() if i.model == "ranker"][0]
    print("ranker reasons:", ranker.reasons)
    rows = [m for i in vigil.store.incidents() for m in vigil.store.outbox_for_prefix(f"incident:{i.id}")]
    rows += vigil.store.outbox_for_prefix("group:1")
    print([(m.kind, m.key, m.payload.get("channel")) for m in rows])
    to_ranking = [m for m in rows if m.payload.get("channel") == RANKING]
    assert to_ranking, "the ranker (not silenced) is critical on a saturated GPU and nobody is told"


GPU = {"selector": 'Hostname="gpu-node-1"'}


def test_models_in_maintenance_are_not_paged_through_their_shared_cause(tmp_path):
    models = [model_config(gpu=GPU, mute_time_intervals=["gpu-maint"]),
              model_config("ranker", gpu=GPU, owner_channel=RANKING, mute_time_intervals=["gpu-maint"])]
    cfg = config(tmp_path, models=models,
                 time_intervals=[{"name": "gpu-maint", "time_intervals": [window_around(T0 - 60, 60)]}])
    vigil = make_vigil(cfg, prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    cycles(vigil, [T0, T0 + 60, T0 + 120])  # all inside the hour-long window
    for i in vigil.store.incidents():
        print(i.model, i.reasons[-1:])
    msgs = [(m.kind, m.payload.get("channel")) for m in vigil.store.outbox_for_prefix("group:1")]
    print(msgs)
    assert msgs == [], "every affected model is in its maintenance window, yet the shared cause pages"


def test_a_silence_of_the_shared_cause_itself_mutes_its_page_but_not_by_one_members_name(tmp_path):
    """README: a shared cause is `alertname="SharedCause"`; a silence written for it (as an
    Alertmanager user writes one for a grouped alert) must hold its page back, while one
    that names a single member does not mute the page that also speaks for another."""
    vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    create(vigil.store, SilenceAsk(['alertname="SharedCause"', 'cause_kind="gpu_saturation"'],
                                   "GPU node swap OPS-12", "olga", duration="4h"), "olga", T0 - 10)
    cycles(vigil, [T0, T0 + 60, T0 + 120, T0 + 600])
    group = [(m.kind, m.payload.get("channel")) for m in vigil.store.outbox_for_prefix("group:1")]
    assert group == [], f"the shared cause is silenced, yet it pages: {group}"
    own = [m for i in vigil.store.incidents() for m in vigil.store.outbox_for_prefix(f"incident:{i.id}")]
    assert own == [], "silencing the shared cause paged each model on its own instead"

    (tmp_path / "b").mkdir()
    other = make_vigil(config(tmp_path / "b"), prometheus=prometheus(), registry=registry(),
                       notifiers={"sink": _Sink()})
    create(other.store, SilenceAsk(['alertname="SharedCause"', 'model="recommender"'], "one model only OPS-13",
                                   "olga", duration="4h"), "olga", T0 - 10)
    cycles(other, [T0, T0 + 60, T0 + 120, T0 + 600])
    assert [m for m in other.store.outbox_for_prefix("group:1") if m.payload.get("channel") == RANKING], \
        "a silence naming the recommender muted the ranker's page through their shared cause"


def test_grouping_by_team_never_lets_one_teams_group_mute_another_teams_model(tmp_path):
    """`grouping.group_by: [cause_kind, cause, team]`: two search models on the saturated
    GPU page as their group; the recommender (team recsys) on the same GPU is alone in its
    group, so it pages as itself. It must not be inhibited by the search team's group,
    whose page does not list it (its owner would never hear of it)."""
    import numpy as np

    from tests.helpers_vigil import step_curve

    models = [model_config(gpu=GPU, labels={"team": "recsys"}),
              model_config("ranker", gpu=GPU, owner_channel=RANKING, labels={"team": "search"}),
              model_config("ranker2", gpu=GPU, owner_channel="#r2", labels={"team": "search"})]
    prom = prometheus()
    prom.curves['p99_of{model="ranker2"}'] = step_curve(0.1, 0.8, T0 - 600)
    prom.curves['ctr_of{model="ranker2"}'] = lambda ts: np.full(len(ts), 0.05)
    reg = registry()
    reg.add_version("ranker2", "1", created_at=T0 - 30 * 86400)
    reg.aliases[("ranker2", "champion")] = "1"
    cfg = config(tmp_path, models=models, grouping={"group_by": ["cause_kind", "cause", "team"]})
    vigil = make_vigil(cfg, prometheus=prom, registry=reg, notifiers={"sink": _Sink()})
    for k in range(5):
        for m in ("recommender", "ranker", "ranker2"):
            vigil.run_cycle(m, T0 + 60 * k)
    (rec,) = [i for i in vigil.store.incidents() if i.model == "recommender"]
    assert vigil.store.outbox_for_prefix(f"incident:{rec.id}"), \
        f"the recommender's critical incident paged no one: {[r for r in rec.reasons if r.startswith('muted')]}"
    rankers = [i for i in vigil.store.incidents() if i.model != "recommender"]
    assert all(not vigil.store.outbox_for_prefix(f"incident:{i.id}") for i in rankers)  # their group pages


def test_a_silenced_member_is_not_paged_through_its_shared_cause(tmp_path, monkeypatch):
    """The recommender is silenced; the ranker on the same GPU is not. The shared cause
    pages for the ranker; the recommender's owner channel, and a receiver that takes only
    the recommender, get nothing from it (Alertmanager leaves a silenced alert out of its
    group's notification)."""
    from tests.fakes.pagerduty_server import FakePagerDuty
    from tests.integration.test_receivers import PD_KEY, pd_receiver

    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakePagerDuty() as pd:
        cfg = config(tmp_path, receivers=[pd_receiver(pd.url, severities=["warning", "critical"],
                                                      models=["recommender"])])
        vigil = make_vigil(cfg, prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
        create(vigil.store, SilenceAsk(['model="recommender"'], "retraining recommender OPS-9", "olga",
                                       duration="4h"), "olga", T0 - 10)
        cycles(vigil, [T0, T0 + 60, T0 + 120, T0 + 600])
        group = vigil.store.outbox_for_prefix("group:1")
        assert [m for m in group if m.payload.get("channel") == RANKING], "the ranker's page is gone"
        assert not [m for m in group if m.payload.get("channel") == "#recsys-alerts"], \
            "the silenced recommender's channel was paged through the shared cause"
        assert pd.events == [], "a receiver of the silenced recommender only was paged"


def test_a_member_whose_silence_ends_is_paged_through_its_shared_cause(tmp_path):
    """When the recommender's silence ends, the group that speaks for it (and inhibits its
    own page) pages its channel at the next change window, not only after repeat_interval."""
    vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining recommender OPS-9", "olga", duration="15m"),
           "olga", T0 - 10)
    cycles(vigil, [T0 + 60 * k for k in range(25)])
    to_recsys = [m.created_at for m in vigil.store.outbox_for_prefix("group:1")
                 if m.payload.get("channel") == "#recsys-alerts"]
    assert to_recsys and min(to_recsys) >= T0 + 890, to_recsys


def test_a_silenced_critical_member_does_not_raise_its_groups_page_to_critical(tmp_path):
    """The recommender is critical and silenced; the ranker on the same GPU is only a
    warning. The shared cause pages for the ranker as a warning (its owner), not as a
    critical that pages the on-call for a model someone silenced."""
    import numpy as np

    prom = prometheus()
    prom.curves['p99_of{model="ranker"}'] = lambda ts: np.full(len(ts), 0.1)  # the ranker: GPU only, a warning
    vigil = make_vigil(config(tmp_path), prometheus=prom, registry=registry(), notifiers={"sink": _Sink()})
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining recommender OPS-9", "olga", duration="4h"),
           "olga", T0 - 10)
    cycles(vigil, [T0 + 60 * k for k in range(6)])
    assert {i.model: i.severity for i in vigil.store.incidents()} == {"recommender": "critical", "ranker": "warning"}
    group = [m for m in vigil.store.outbox_for_prefix("group:1") if m.kind == "group"]
    assert [m for m in group if m.payload["channel"] == RANKING], "the ranker's page is gone"
    assert {m.payload["channel"] for m in group} == {RANKING}, [(m.payload["channel"], m.payload["severity"])
                                                                for m in group]



def test_a_member_whose_incident_is_silenced_is_not_paged_through_its_shared_cause(tmp_path):
    """The incident's own silence (POST /v1/incidents/{id}/silence) muted the recommender's
    own page, but its shared cause did not count it as muted: the group went on paging the
    recommender's owner channel for it for the whole silence, as if nobody had silenced it.
    It is now a muted member like one a silence or a maintenance window mutes."""
    vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    cycles(vigil, [T0, T0 + 60])  # both critical; the group paged for both
    (rec,) = [i for i in vigil.store.incidents() if i.model == "recommender"]
    assert rec.severity == "critical"
    vigil.operator.silence(rec.id, "olga", 4 * 3600, "retraining recommender OPS-9", T0 + 70)
    cycles(vigil, [T0 + 120, T0 + 600, T0 + 900])
    after = [m for m in vigil.store.outbox_for_prefix("group:1") if m.created_at > T0 + 70]
    assert [m for m in after if m.payload.get("channel") == RANKING], "the ranker's page is gone"
    assert not [m for m in after if m.payload.get("channel") == "#recsys-alerts"], \
        "the recommender's incident is silenced, yet its channel was paged through the shared cause"
    last = [m for m in after if m.kind == "group"][-1].payload
    assert [m["muted"] for m in last["models"] if m["model"] == "recommender"] == [True]


def test_a_silenced_members_escalation_still_pages_through_its_shared_cause(tmp_path):
    """Silenced as a warning, the recommender turns critical in its group: as its own page
    would, the escalation gets through the incident's silence, and the group pages its
    channels for it."""
    vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    cycles(vigil, [T0])  # both warnings; the group waits
    (rec,) = [i for i in vigil.store.incidents() if i.model == "recommender"]
    assert rec.severity == "warning"
    vigil.operator.silence(rec.id, "olga", 4 * 3600, "feature backfill OPS-10", T0 + 10)
    cycles(vigil, [T0 + 60, T0 + 120])  # both critical
    group = [m for m in vigil.store.outbox_for_prefix("group:1") if m.kind == "group"]
    assert [m for m in group if m.payload.get("channel") == "#recsys-alerts"], \
        "the silenced warning turned critical and its channel was never told"


def test_a_member_told_as_a_warning_and_silenced_once_critical_is_not_paged_through_its_group(tmp_path):
    """The recommender paged on its own as a warning before its shared cause formed; the
    group then told its escalation to critical (its own page held). Its incident, silenced
    while critical (POST /v1/incidents/{id}/silence), still counted as an escalation past
    what it was told (the warning of its own message): its group went on paging its channels
    for it for the whole silence, which did nothing. The severity silenced at is the one an
    escalation must now get past."""
    from alerts.lifecycle import told_digest
    from monitor.store.repository import IncidentRow

    cfg = config(tmp_path, grouping={"repeat_interval": "1h"})
    vigil = make_vigil(cfg, prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    cycles(vigil, [T0, T0 + 60, T0 + 120])  # both critical; the group paged for both
    (rec,) = [i for i in vigil.store.incidents() if i.model == "recommender"]
    with vigil.store.tx() as s:  # as if its own page had told a warning before the group formed
        row = s.get(IncidentRow, rec.id)
        assert row.severity == "critical"
        row.notified_digest, row.last_notified_at = told_digest("d0", "warning"), T0 - 600
    vigil.operator.silence(rec.id, "olga", 8 * 3600, "retraining recommender OPS-9", T0 + 130)
    cycles(vigil, [T0 + 180, T0 + 600, T0 + 3900, T0 + 7500])
    after = [m for m in vigil.store.outbox_for_prefix("group:1") if m.created_at > T0 + 130]
    assert [m for m in after if m.payload.get("channel") == RANKING], "the ranker's page is gone"
    assert not [m for m in after if m.payload.get("channel") == "#recsys-alerts"], \
        "the recommender's incident is silenced at critical, yet its group paged its channel for it"
