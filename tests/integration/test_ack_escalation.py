"""An ack covers the severity acknowledged: the model owner takes the warning, the incident
then turns critical. The critical is news (as a new, higher-severity alert is in PagerDuty or
Alertmanager): it pages the on-call's PagerDuty without being acknowledged there on the
owner's behalf, and it is repeated until someone takes the critical."""
from __future__ import annotations

import pytest

from alerts.slack import SlackNotifier
from monitor.notifiers import build_receivers
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import MODEL, ONCALL, OWNER, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration
TOKEN = "xoxb-ack-escalation"
PD_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def pd(monkeypatch):
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN, channels=(OWNER.lstrip("#"), ONCALL.lstrip("#"))) as fake:
        yield fake


def test_an_ack_of_the_warning_does_not_acknowledge_or_silence_the_escalation(tmp_path, pd, slack):
    cfg = make_config(tmp_path, mentions={"critical": ["<!subteam^S0ONCALL>"]},
                      policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"},
                      receivers=[{"name": "pd-oncall", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY",
                                  "url": pd.url, "severities": ["critical"], "backoff_s": 0.0,
                                  "max_wait_s": 0.2}])
    notifier = SlackNotifier(TOKEN, base_url=slack.base_url, max_rate_limit_retries=0, timeout_s=5.0)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={"slack": notifier, **build_receivers(cfg)})

    def cycle(t: float) -> str:
        step = vigil.run_cycle(MODEL, t).step
        for _ in range(10):
            if vigil.deliver(t) == 0:
                break
        return step

    assert cycle(T0) == "open"  # a warning, to the owner
    (row,) = vigil.store.incidents()
    vigil.operator.acknowledge(row.id, "api:owner", T0 + 30)  # the owner takes the warning
    assert cycle(T0 + 60) == "update"  # the SLO breach turns it critical
    (alert,) = pd.alerts()
    assert alert.severity == "critical"
    assert alert.status == "triggered", \
        f"the on-call's page was acknowledged on the owner's behalf: {[e['event_action'] for e in pd.events]}"
    steps = [cycle(T0 + 60 * k) for k in range(2, 9)]
    assert "repeat" in steps, f"the unacknowledged critical was never repeated: {steps}"
    (parent,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
    texts = [m.text for m in slack.thread(OWNER, parent.ts)]
    assert any("still *critical*" in x and "S0ONCALL" in x for x in texts), texts

    # the on-call takes the critical: that ack reaches PagerDuty and stops the reminders
    vigil.operator.acknowledge(row.id, "api:oncall", T0 + 570)
    assert vigil.store.incident(row.id).acknowledged_by == "api:oncall"
    later = [cycle(T0 + 600 + 60 * k) for k in range(8)]
    assert "repeat" not in later, later
    assert pd.alerts()[0].status == "acknowledged"


def test_an_ack_given_while_a_silence_held_the_escalation_does_not_cover_it_once_told(tmp_path, slack):
    """Told of a warning, then silenced; the incident turns critical under the silence and
    the owner acknowledges the warning they were shown. When the silence ends the critical is
    told as an escalation, and it is repeated: the owner's ack was of the warning."""
    from monitor.silence_ops import SilenceAsk, create

    cfg = make_config(tmp_path, mentions={"critical": ["<!subteam^S0ONCALL>"]},
                      policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"})
    notifier = SlackNotifier(TOKEN, base_url=slack.base_url, max_rate_limit_retries=0, timeout_s=5.0)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={"slack": notifier})
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-9", "olga", starts_at=T0 + 30,
                                   ends_at=T0 + 150), "olga", T0 - 10)

    def cycle(t: float) -> str:
        step = vigil.run_cycle(MODEL, t).step
        for _ in range(10):
            if vigil.deliver(t) == 0:
                break
        return step

    assert cycle(T0) == "open"
    assert cycle(T0 + 60) == "update"  # critical under the silence: not told
    (row,) = vigil.store.incidents()
    vigil.operator.acknowledge(row.id, "api:owner", T0 + 90)
    cycle(T0 + 120)
    steps = [cycle(T0 + 60 * k) for k in range(3, 12)]  # the silence is over
    (parent,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
    texts = [m.text for m in slack.thread(OWNER, parent.ts)]
    assert any("escalated to *critical*" in x for x in texts), texts
    assert "repeat" in steps and any("still *critical*" in x for x in texts), (steps, texts)


def test_an_escalation_pages_again_on_a_pagerduty_that_had_the_acknowledged_warning(tmp_path, pd):
    """The default receiver takes warnings too: the owner's ack of the warning acknowledged
    its PagerDuty alert, and PagerDuty keeps an acknowledged alert acknowledged on a new
    trigger. The escalation must page as a new, critical alert, not fold into the acked one."""
    cfg = make_config(tmp_path, receivers=[{"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY",
                                            "url": pd.url, "backoff_s": 0.0, "max_wait_s": 0.2}])
    vigil = make_vigil(cfg, prometheus=incident_prometheus())

    def cycle(t: float) -> None:
        vigil.run_cycle(MODEL, t)
        for _ in range(10):
            if vigil.deliver(t) == 0:
                break

    cycle(T0)
    (row,) = vigil.store.incidents()
    vigil.operator.acknowledge(row.id, "api:owner", T0 + 30)
    for _ in range(10):
        if vigil.deliver(T0 + 30) == 0:
            break
    assert [(a.severity, a.status) for a in pd.alerts()] == [("warning", "acknowledged")]
    cycle(T0 + 60)  # critical
    live = [(a.severity, a.status) for a in pd.alerts() if a.status != "resolved"]
    assert live == [("critical", "triggered")], \
        f"the escalation folded into the acknowledged warning: {[(a.severity, a.status) for a in pd.alerts()]}"


def test_a_rollback_shown_while_a_silence_holds_the_escalation_pages_no_one(tmp_path, pd):
    """The owner acknowledged the warning; under a silence the incident turns critical (not
    told: the ack lapses) and a rollback is shown on its message. That edit must not close
    the acknowledged PagerDuty alert and trigger a new one during the silence; the
    escalation pages, as a new alert, when the silence ends."""
    from monitor.cycle.rollback_ask import RollbackAsk
    from monitor.silence_ops import SilenceAsk, create
    from tests.helpers_vigil import serving_registry

    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "rollback": {"enabled": False}},
                      receivers=[{"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY",
                                  "url": pd.url, "backoff_s": 0.0, "max_wait_s": 0.2}])
    registry = serving_registry(versions=("1", "2"))
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry)
    m = cfg.model(MODEL)
    vigil.deploys.poll(m, T0 - 40 * 86400)
    registry.aliases[(MODEL, "champion")] = "2"
    vigil.deploys.poll(m, T0 - 30 * 86400)  # long ago: no suspect, the incident opens as a warning

    def drain(t: float) -> None:
        for _ in range(10):
            if vigil.deliver(t) == 0:
                break

    assert vigil.run_cycle(MODEL, T0).step == "open"
    drain(T0)
    (row,) = vigil.store.incidents()
    vigil.operator.acknowledge(row.id, "api:owner", T0 + 30)
    drain(T0 + 30)
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-9", "olga", starts_at=T0 + 40,
                                   ends_at=T0 + 170), "olga", T0 + 35)
    vigil.run_cycle(MODEL, T0 + 60)  # critical under the silence: not told
    drain(T0 + 60)
    assert vigil.store.incident(row.id).severity == "critical"
    done = vigil.operator.rollback(RollbackAsk(m, "1", "p99 since v2", "api:alice", row.id, T0 + 90))
    assert done.status == "done", done
    drain(T0 + 90)
    alerts = [(a.severity, a.status) for a in pd.alerts()]
    assert alerts == [("warning", "acknowledged")], f"the rollback's edit paged during the silence: {alerts}"
    for t in (T0 + 180, T0 + 240):  # the silence is over: the escalation pages
        vigil.run_cycle(MODEL, t)
        drain(t)
    live = [(a.severity, a.status) for a in pd.alerts() if a.status != "resolved"]
    assert live == [("critical", "triggered")], [(a.severity, a.status) for a in pd.alerts()]
