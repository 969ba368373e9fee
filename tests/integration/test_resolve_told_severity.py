"""The resolve of an incident whose escalation a silence held back (never told) shows the
severity people were told, in chat and on the pagers: the owner saw a warning, so "resolved"
must not announce a critical nobody heard of."""
from __future__ import annotations

import pytest

from alerts.slack import SlackNotifier
from monitor.notifiers import build_receivers
from monitor.silence_ops import SilenceAsk, create
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import MODEL, ONCALL, OWNER, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration
TOKEN = "xoxb-resolve-told"
PD_KEY = "fedcba9876543210fedcba9876543210"


def test_the_resolve_of_a_held_escalation_shows_the_severity_told(tmp_path, monkeypatch):
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakeSlack(token=TOKEN, channels=(OWNER.lstrip("#"), ONCALL.lstrip("#"))) as slack, FakePagerDuty() as pd:
        cfg = make_config(tmp_path, receivers=[{"name": "pd", "kind": "pagerduty", "url": pd.url,
                                                "routing_key_env": "PD_ROUTING_KEY", "backoff_s": 0.0,
                                                "max_wait_s": 0.2}])
        notifier = SlackNotifier(TOKEN, base_url=slack.base_url, max_rate_limit_retries=0, timeout_s=5.0)
        vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_until=T0 + 120),
                           notifiers={"slack": notifier, **build_receivers(cfg)})
        create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-8", "olga", starts_at=T0 + 30,
                                       duration="2h"), "olga", T0 - 10)
        for t in (T0, T0 + 60, T0 + 720, T0 + 780):  # warning told; critical under the silence; resolved
            vigil.run_cycle(MODEL, t)
            for _ in range(10):
                if vigil.deliver(t) == 0:
                    break
        (row,) = vigil.store.incidents()
        assert (row.status, row.severity) == ("resolved", "critical")  # the store keeps what it reached
        (parent,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
        shown = str(parent.versions[-1])
        assert "Resolved" in shown
        assert "[CRITICAL]" not in shown and "· CRITICAL ·" not in shown, \
            f"the resolve announced a critical never told: {parent.versions[-1]['text']}"
        assert "[WARNING]" in parent.versions[-1]["text"]
        assert [e.get("payload", {}).get("severity") for e in pd.events if e["event_action"] == "trigger"] \
            == ["warning"]
        resolves = [m for m in vigil.store.outbox_for_prefix("incident:1") if m.notifier == "pd"]
        assert resolves[-1].payload["status"] == "resolved"
        assert resolves[-1].payload["severity"] == "warning", resolves[-1].payload
