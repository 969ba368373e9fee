"""One page for a shared cause: two models saturating the same GPU open two incidents
but page once, in one message that lists both with their evidence; the members' own
messages are held (recorded, muted by the shared cause). With two replicas on one
PostgreSQL, each owning one of the models, there is still exactly one group and one page."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.outbox import DeliveryResult, DeliveryStatus, OutboxMessage
from alerts.slack import SlackNotifier
from monitor.receivers import build_receivers
from monitor.store import groups
from monitor.store.outbox import OutboxRow
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.fakes.slack_server import FakeSlack
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import (
    CTR_QUERY,
    ONCALL,
    OWNER,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
    step_curve,
)

pytestmark = pytest.mark.integration
TOKEN = "xoxb-shared-cause"
SEL = '{Hostname="gpu-node-1"}'
RANKING = "#ranking-alerts"


def prometheus(saturated_until: float = float("inf")) -> StubPrometheus:
    """The GPU both models run on saturates, and both models' p99 latency breaches its SLO."""
    return StubPrometheus({f"DCGM_FI_DEV_GPU_UTIL{SEL}": step_curve(40, 99, T0 - 900, saturated_until),
                           P99_QUERY: step_curve(0.1, 0.8, T0 - 600, saturated_until),
                           'p99_of{model="ranker"}': step_curve(0.1, 0.8, T0 - 600, saturated_until),
                           CTR_QUERY: lambda ts: np.full(len(ts), 0.05),
                           'ctr_of{model="ranker"}': lambda ts: np.full(len(ts), 0.05)})


def config(tmp_path: Path, **sections: Any) -> Any:
    gpu = {"selector": 'Hostname="gpu-node-1"'}
    sections.setdefault("models", [model_config(gpu=gpu), model_config("ranker", gpu=gpu, owner_channel=RANKING)])
    return make_config(tmp_path, **sections)


def registry() -> Any:
    reg = serving_registry()
    reg.add_version("ranker", "1", created_at=T0 - 30 * 86400)
    reg.aliases[("ranker", "champion")] = "1"
    return reg


def cycles(vigil: Vigil, times: list[float]) -> None:
    for t in times:
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, t)
        for _ in range(5):
            if vigil.deliver(t) == 0:
                break


def test_two_models_on_one_saturated_gpu_page_once_listing_both(tmp_path):
    with FakeSlack(token=TOKEN, channels=("recsys-alerts", "ml-oncall", "ranking-alerts")) as slack:
        notifier = SlackNotifier(TOKEN, base_url=slack.base_url, max_rate_limit_retries=0, timeout_s=5.0)
        vigil = make_vigil(config(tmp_path), prometheus=prometheus(T0 + 180), registry=registry(),
                           notifiers={"slack": notifier})
        cycles(vigil, [T0])  # both open; the group waits group_wait (30 s) for more members
        assert slack.messages(OWNER) == [] and slack.messages(RANKING) == []
        cycles(vigil, [T0 + 60, T0 + 120])

        incidents = vigil.store.incidents(status="open")
        assert sorted(i.model for i in incidents) == ["ranker", "recommender"]  # both recorded
        assert all(any("shared cause" in r for r in i.reasons) for i in incidents)
        for channel in (OWNER, RANKING, ONCALL):  # one message per channel: the group's
            (msg,) = slack.messages(channel)
            assert "2 models share one cause: gpu_saturation" in msg.text
            body = str(msg.blocks)
            assert "*recommender*" in body and "*ranker*" in body and "p99_latency" in body
        assert len([c for c in slack.calls("chat.postMessage")]) == 3

        # the GPU recovered (and left the 30 min lookback): both resolve, then the group
        cycles(vigil, [T0 + 2100 + 60 * i for i in range(4)])
        assert vigil.store.incidents(status="open") == []
        # what muted them stays on record once resolved
        assert all(any("shared cause" in r for r in i.reasons) for i in vigil.store.incidents())
        (msg,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
        assert msg.text.startswith(":white_check_mark: Resolved")  # the group's message, edited
        (reply,) = slack.thread(OWNER, msg.ts)  # and said in its thread
        assert "resolved" in reply.text
        tops = [c for c in slack.calls("chat.postMessage") if not c.params.get("thread_ts")]
        assert len(tops) == 3, "the members never paged on their own"
        with vigil.store.tx() as s:
            assert groups.firing(s) == []  # closed


def test_a_model_alone_on_its_cause_pages_as_itself_after_group_wait(tmp_path):
    vigil = make_vigil(config(tmp_path, models=[model_config(gpu={"selector": 'Hostname="gpu-node-1"'})]),
                       prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    vigil.run_cycle("recommender", T0)
    assert vigil.store.outbox_for_prefix("incident:1") == []  # waiting for other members
    vigil.run_cycle("recommender", T0 + 60)
    assert vigil.store.outbox_for_prefix("incident:1"), "no other model joined: it pages as itself"
    assert vigil.store.outbox_for_prefix("group:1") == []


def test_a_group_left_empty_by_a_crashed_cycle_still_waits_for_its_members(tmp_path, monkeypatch):
    """The group is made in its own transaction before the cycle's; a cycle that crashed in
    between (a kill, a lost lease) left an open group nobody had joined. At the next cycle
    after the restart its group_wait had passed already: the first model paged on its own and
    then the group paged for both, two pages for one cause. Its wait now starts with its
    first member."""
    from monitor import failpoints
    from monitor.failpoints import ENV, FailPointError

    vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})
    failpoints.reset()
    monkeypatch.setenv(ENV, "in_apply_tx=raise@1")
    with pytest.raises(FailPointError):
        vigil.run_cycle("recommender", T0)  # crashed after the group was made
    monkeypatch.delenv(ENV)
    failpoints.reset()
    with vigil.store.tx() as s:
        assert [g for g, members in groups.firing(s) if not members], "no empty group left: nothing to test"
    cycles(vigil, [T0 + 60, T0 + 120, T0 + 180])
    own = [m for i in vigil.store.incidents() for m in vigil.store.outbox_for_prefix(f"incident:{i.id}")]
    assert own == [], [(m.key, m.created_at) for m in own]
    assert vigil.store.outbox_for_prefix("group:1"), "the shared cause never paged"


def test_grouping_off_pages_each_model(tmp_path):
    vigil = make_vigil(config(tmp_path, grouping={"enabled": False}), prometheus=prometheus(), registry=registry(),
                       notifiers={"sink": _Sink()})
    for m in ("recommender", "ranker"):
        vigil.run_cycle(m, T0)
    assert vigil.store.outbox_for_prefix("incident:1") and vigil.store.outbox_for_prefix("incident:2")


class _Sink:
    name = "sink"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.DELIVERED)


@pytest.mark.parametrize("rounds", [3])
def test_two_replicas_on_postgresql_agree_on_one_group_and_one_page(tmp_path, postgres_url, rounds,
                                                                   monkeypatch):
    """Each replica runs one model (as leases would share them), both at the same moments;
    both send their outbox to one PagerDuty, which gets one alert for the group."""
    from tests.fakes.pagerduty_server import FakePagerDuty

    monkeypatch.setenv("PD_ROUTING_KEY", "R" * 32)
    pd = FakePagerDuty().__enter__()
    url = fresh_schema_url(postgres_url)
    receiver = {"name": "pagerduty", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url}
    cfg = config(tmp_path, store={"url": url}, receivers=[receiver])
    replicas = [Vigil(cfg, clock=None, store=Store(url), prometheus=prometheus(), registry=registry(),
                      notifiers={"sink": _Sink(), **build_receivers(cfg)}) for _ in range(2)]
    errors: list[BaseException] = []
    for i in range(rounds):
        t = T0 + 60 * i
        barrier = threading.Barrier(2)

        def run(v: Vigil, model: str, t: float = t, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(5)
                v.run_cycle(model, t)
                barrier.wait(5)
                v.deliver(t)  # both senders at once: each row is claimed by one of them
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(replicas[0], "recommender")),
                   threading.Thread(target=run, args=(replicas[1], "ranker"))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
    assert errors == []
    store = replicas[0].store
    with store.tx() as s:
        all_groups = s.query(groups.AlertGroupRow).all()
        assert len(all_groups) == 1, [g.key for g in all_groups]
        members = groups.members(s, all_groups[0].id)
        assert sorted(m.model for m in members) == ["ranker", "recommender"]
        rows = s.query(OutboxRow).filter(OutboxRow.key.like("group:%")).all()
        first_pages = [r for r in rows if r.payload.get("change") == "first"]
    # one first page per channel (owner of each model + on-call), whichever replica wrote it
    assert sorted(r.payload["channel"] for r in first_pages) == sorted([OWNER, RANKING, ONCALL])
    assert not [m for m in store.outbox_for_prefix("incident:1") + store.outbox_for_prefix("incident:2")
                if m.kind == "incident"]
    try:
        paged = [m for m in store.outbox_for_prefix("group:1") if m.notifier == "pagerduty"]
        assert [m.payload["dedup_key"] for m in paged] == ["vigil-group-1"], "one page for the group"
        assert [m.status for m in paged] == ["delivered"]
        (alert,) = pd.alerts()
        assert alert.dedup_key == "vigil-group-1" and len(alert.log) == 1
    finally:
        pd.__exit__(None, None, None)


def test_a_shared_cause_pages_pagerduty_once_listing_the_models_and_resolves_with_the_group(tmp_path, monkeypatch):
    from tests.fakes.pagerduty_server import FakePagerDuty

    monkeypatch.setenv("PD_ROUTING_KEY", "R" * 32)
    with FakePagerDuty() as pd:
        receiver = {"name": "pagerduty", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
                    "severities": ["warning", "critical"]}
        vigil = make_vigil(config(tmp_path, receivers=[receiver]), prometheus=prometheus(T0 + 180),
                           registry=registry())
        cycles(vigil, [T0, T0 + 60, T0 + 120])
        paged = [m for i in (1, 2) for m in vigil.store.outbox_for_prefix(f"incident:{i}")
                 if m.notifier == "pagerduty"]
        assert paged == [], "a member held by its group never pages on its own"
        (alert,) = pd.alerts()
        assert alert.dedup_key == "vigil-group-1" and alert.status == "triggered"
        assert "2 models share one cause: gpu_saturation" in alert.summary
        details = alert.log[0]["payload"]["custom_details"]
        assert details["group_id"] == 1
        lines = details["affected_models"]
        assert sorted(line.split(" ")[0] for line in lines) == ["ranker", "recommender"]
        assert all("p99_latency" in line for line in lines), lines  # each with its evidence
        vigil.operator.acknowledge(1, "olga", T0 + 130)  # a member acknowledged in Slack or the API
        vigil.deliver(T0 + 130)
        assert not [m for m in vigil.store.outbox_for_prefix("incident:1") if m.notifier == "pagerduty"], \
            "its group speaks for it: the ack opens no page of its own"

        cycles(vigil, [T0 + 2100 + 60 * i for i in range(4)])  # the GPU recovered: both resolve, then the group
        assert vigil.store.incidents(status="open") == []
        (alert,) = pd.alerts()
        assert alert.status == "resolved"
        assert not [m for i in (1, 2) for m in vigil.store.outbox_for_prefix(f"incident:{i}")
                    if m.notifier == "pagerduty"], "nor does it resolve on its own what it never opened"


def test_a_member_held_by_its_shared_cause_is_not_re_sent_to_pagerduty_every_cycle(tmp_path, monkeypatch):
    """Both models paged PagerDuty on their own (p99 breached), then their GPU saturated and
    the shared cause took over. PagerDuty, which has each model's incident, hears of a
    change in it (its resolve, ...), not an identical trigger for each model every cycle."""
    from tests.fakes.pagerduty_server import FakePagerDuty
    from tests.integration.test_receivers import PD_KEY, pd_receiver

    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakePagerDuty() as pd:
        prom = prometheus(T0 + 1800)
        prom.curves[f"DCGM_FI_DEV_GPU_UTIL{SEL}"] = lambda ts: np.where((ts >= T0 + 300) & (ts < T0 + 1800), 99.0, 40.0)
        cfg = config(tmp_path, receivers=[pd_receiver(pd.url, severities=["warning", "critical"])])
        vigil = make_vigil(cfg, prometheus=prom, registry=registry(), notifiers={"sink": _Sink(),
                                                                               **build_receivers(cfg)})
        cycles(vigil, [T0 + 60 * k for k in range(40)])
        per_key: dict[str, list[str]] = {}
        for e in pd.events:
            per_key.setdefault(e["dedup_key"], []).append(e["event_action"])
        assert all(i.status == "resolved" for i in vigil.store.incidents())
        for key in ("vigil-incident-1", "vigil-incident-2"):
            assert per_key[key].count("trigger") <= 3 and per_key[key][-1] == "resolve", per_key
