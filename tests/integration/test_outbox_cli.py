"""`vigil outbox list|drop`: a notifier taken out of the config leaves its messages waiting
for ever (and VigilNotificationStuck firing); a person sees them and lets them go, audited."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from alerts.outbox import MessageKind
from monitor.cli import main
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store

NOW = 1_780_000_000.0


def _setup(tmp_path: Path) -> tuple[str, Store]:
    config = tmp_path / "vigil.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "models": [{"name": "ranker"}],
        "receivers": [{"name": "pagerduty", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY"}]}))
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    with store.tx() as s:  # two pages for a receiver since removed, one for one still configured
        for i, notifier in enumerate(["pd-old", "pd-old", "pagerduty"]):
            store.outbox.enqueue(s, notifier, MessageKind.INCIDENT, f"incident:{i}", {"title": "x"}, NOW - 3600)
    return str(config), store


def _oldest_age(store: Store, notifiers: dict) -> float:
    metrics = VigilMetrics()
    OutboxSender(store, notifiers, metrics).deliver_due(NOW)  # not configured here: tried, and left waiting
    return float(metrics.registry.get_sample_value("vigil_outbox_oldest_pending_age_seconds"))


def test_a_removed_notifiers_messages_are_listed_and_dropped_audited(tmp_path, capsys):
    config, store = _setup(tmp_path)
    assert main(["outbox", "list", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "pd-old" in out and "not in the config" in out and "vigil outbox drop --notifier pd-old" in out
    assert "pagerduty" in out.split("pd-old")[0] and "not in the config" not in out.split("pd-old")[0]

    assert main(["outbox", "drop", "--notifier", "pd-old", "--reason", "receiver removed, OPS-9",
                 "--actor", "alice", "--config", config]) == 0
    assert "2 message(s) for pd-old dropped" in capsys.readouterr().out
    assert main(["outbox", "list", "--json", "--config", config]) == 0
    rows = {r["notifier"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["pd-old"]["open"], rows["pd-old"]["failed"], rows["pd-old"]["configured"]) == (0, 2, False)
    assert (rows["pagerduty"]["open"], rows["pagerduty"]["configured"]) == (1, True)  # untouched
    [entry] = [e for e in store.audit_entries() if e.action == "outbox.drop"]
    assert (entry.actor, entry.target, entry.detail["messages"]) == ("cli:alice", "notifier:pd-old", 2)


def test_a_notifier_still_configured_is_not_dropped_without_force(tmp_path, capsys):
    config, store = _setup(tmp_path)
    for notifier in ("pagerduty", "slack"):
        assert main(["outbox", "drop", "--notifier", notifier, "--reason", "x", "--config", config]) == 64
        assert "still configured" in capsys.readouterr().err
    assert main(["outbox", "drop", "--notifier", "pagerduty", "--reason", "x", "--store",
                 f"sqlite:///{tmp_path / 'vigil.db'}", "--config", str(tmp_path / "absent.yaml")]) == 64
    assert "no config to check it against" in capsys.readouterr().err
    assert store.outbox.backlog()[0].open == 1
    assert main(["outbox", "drop", "--notifier", "pagerduty", "--reason", "x", "--force", "--config", config]) == 0


def test_after_the_drop_the_stuck_gauge_no_longer_counts_them(tmp_path, capsys):
    config, store = _setup(tmp_path)
    with store.tx() as s:  # the configured receiver's page is dealt with; pd-old's never will be
        store.outbox.abandon(s, "pagerduty", "delivered elsewhere", NOW)
    assert _oldest_age(store, {}) >= 3600
    assert main(["outbox", "drop", "--notifier", "pd-old", "--reason", "removed", "--config", config]) == 0
    assert _oldest_age(store, {}) == 0


def test_a_notifier_name_that_never_existed_is_refused_naming_the_known_ones(tmp_path, capsys):
    """A typo (`pd-odl`) printed "0 message(s) for pd-odl dropped" and exited 0: it looked
    like the drop was done while pd-old's pages went on waiting."""
    config, store = _setup(tmp_path)
    for extra in ([], ["--force"]):
        assert main(["outbox", "drop", "--notifier", "pd-odl", "--reason", "removed", "--config", config,
                     *extra]) == 64
        err = capsys.readouterr().err
        assert "'pd-odl'" in err and "pd-old" in err and "pagerduty" in err and "slack" in err, err
    assert store.outbox.backlog()[1].notifier == "pd-old" and store.outbox.backlog()[1].open == 2
    assert not [e for e in store.audit_entries() if e.action == "outbox.drop"]


def test_a_message_a_silence_held_back_is_listed_with_the_silence(tmp_path, capsys):
    from alerts.outbox import DeliveryResult, DeliveryStatus

    config, store = _setup(tmp_path)
    (head, *_) = store.outbox.due(NOW)
    claim = store.outbox.claim(head, NOW)
    assert claim is not None
    why = 'suppressed by silence 7 (model="ranker") by olga: the repeated reminder was queued before it and not sent'
    assert store.outbox.record(claim, DeliveryResult(DeliveryStatus.SUPPRESSED, error=why), NOW, 15.0)
    assert main(["outbox", "list", "--config", config]) == 0
    assert "suppressed      1" in capsys.readouterr().out
    assert main(["outbox", "list", "--suppressed", "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"#{head.id} pd-old incident:0" in out and "silence 7" in out
