"""`vigil rollback MODEL --config FILE --reason TEXT` as a person types it, against a real
MLflow registry (SQLite) and the store the daemon keys its audit log in."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.outbox import MessageKind
from monitor.cli import main
from monitor.config import MlflowConfig
from monitor.replay.local_mlflow import sqlite_tracking_uri
from monitor.replay.registry_bundle import RegistryEvent, RegistryTimeline
from monitor.sources.registry import RegistrySource
from monitor.store.repository import Store

pytestmark = pytest.mark.integration
KEY_ENV = "VIGIL_TEST_ROLLBACK_AUDIT_KEY"


def _registry(tmp_path: Path) -> str:
    """recommender v1 and v2, `champion` on v2."""
    uri = sqlite_tracking_uri(tmp_path / "mlflow.db")
    now = time.time()
    events = [RegistryEvent("model", "recommender", now - 90 * 86400),
              RegistryEvent("version", "recommender", now - 80 * 86400, version="1"),
              RegistryEvent("version", "recommender", now - 70 * 86400, version="2"),
              RegistryEvent("alias", "recommender", now - 60 * 86400, version="2", alias="champion")]
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        RegistryTimeline(events, registry).apply_until(now)
    return uri


def _config(tmp_path: Path, name: str, uri: str, *, keyed: bool) -> str:
    (tmp_path / name).write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "slack": {"sink_path": "notifications.jsonl"},
        "sources": {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": uri}},
        **({"audit": {"key_env": KEY_ENV}} if keyed else {}),
        "models": [{"name": "recommender", "alias": "champion"}]}))
    return str(tmp_path / name)


def test_a_rollback_without_the_audit_key_of_a_keyed_log_is_refused_before_anything_moves(tmp_path, capsys,
                                                                                          monkeypatch):
    """A copy of vigil.yaml without `audit:` (a laptop, a runbook's) appended unkeyed entries
    to the keyed audit log: `vigil audit verify` then reported it BROKEN, as if tampered with,
    for ever. It is refused like `vigil silence add` is, and nothing moves."""
    monkeypatch.setenv(KEY_ENV, "0123456789abcdef0123456789abcdef")
    uri = _registry(tmp_path)
    keyed = _config(tmp_path, "vigil.yaml", uri, keyed=True)
    assert main(["silence", "add", "--config", keyed, 'model="recommender"', "--comment", "keys the log"]) == 0
    unkeyed = _config(tmp_path, "laptop.yaml", uri, keyed=False)
    capsys.readouterr()

    for extra in (["--dry-run"], []):
        code = main(["rollback", "recommender", "--config", unkeyed, "--reason", "bad deploy", "--to-version", "1",
                     *extra])
        assert code == 2, extra
        err = capsys.readouterr().err
        assert "keyed" in err and "audit.key_env" in err, extra
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"  # nothing moved
    assert main(["audit", "verify", "--config", keyed]) == 0, capsys.readouterr().err

    # With the key, the same rollback goes through and the log still verifies.
    assert main(["rollback", "recommender", "--config", keyed, "--reason", "bad deploy", "--to-version", "1"]) == 0
    assert main(["audit", "verify", "--config", keyed]) == 0, capsys.readouterr().err
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    assert [e.actor for e in store.audit_entries()][-1] == "cli:operator"
    store.close()


@pytest.mark.parametrize("version, why", [("v1", "digits"), ("99", "not found")])
def test_a_version_the_registry_cannot_serve_is_refused_before_a_rollback_is_recorded(tmp_path, capsys, version,
                                                                                      why):
    """`--to-version v1` (as Vigil's messages write versions) or a version that does not
    exist: the API answers 422 naming to_version and records nothing; the CLI recorded an
    intent, audited a requested and a failed rollback and exited 1 as if the registry failed."""
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    try:
        code = main(["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", version])
    except SystemExit as e:  # argparse refuses the option itself
        code = e.code
    assert code in (2, 64)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--to-version" in last and why in last
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    assert [e.action for e in store.audit_entries()] == []  # nothing recorded
    store.close()
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"


def _open_incident(tmp_path: Path) -> int:
    """An open incident of recommender that people were told of (in Slack, a PagerDuty page)."""
    from alerts.lifecycle import IncidentStatus
    from monitor.store.repository import IncidentRow

    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    now = time.time()
    with store.tx() as s:
        row = IncidentRow(model="recommender", status=IncidentStatus.OPEN, severity="critical",
                          title="recommender: ctr dropped", onset=now - 600, opened_at=now - 600,
                          updated_at=now - 600, fingerprint="recommender", last_notified_at=now - 600)
        s.add(row)
        s.flush()
        incident_id = row.id
        # Waiting for a notifier only the daemon has (Grafana, its token in the daemon's environment).
        store.enqueue(s, "grafana", MessageKind.INCIDENT, f"incident:{incident_id}", {"title": "t"}, now - 600)
    store.close()
    return incident_id


def test_a_rollback_from_the_terminal_is_announced_once_on_the_incident_people_were_told_of(tmp_path, capsys):
    """`vigil rollback` moved the alias and wrote the audit log but told no one: the incident's
    Slack message still showed nobody acting, so another on-call could roll back or fix
    forward over it. It now announces the rollback through the outbox, as the API does, on
    the model's open incident; a retry (after a crash, a second press) announces nothing more."""
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    incident_id = _open_incident(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    with store.tx() as s:  # the daemon's backlog (Slack was down): the daemon's to send, not the terminal's
        backlog = [store.enqueue(s, "sink", MessageKind.INCIDENT, f"incident:{90 + k}:#ops", {"k": k},
                                 time.time() - 60).id for k in range(3)]

    assert main(["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", "1"]) == 0
    try:
        left = [m for k in range(3) for m in store.outbox_for_prefix(f"incident:{90 + k}")]
        assert [(m.id, m.status, m.attempts) for m in left] == [(i, "pending", 0) for i in backlog]
        updates = store.outbox_for_prefix(f"incident:{incident_id}")
        theirs = [m for m in updates if m.notifier == "grafana"]
        updates = [m for m in updates if m.notifier != "grafana"]
        assert [m.notifier for m in updates] == ["sink"]
        # ... and the daemon's notifier's row is left to it, not put back with a back-off.
        assert [(m.status, m.attempts) for m in theirs] == [("pending", 0)]
        shown = updates[0].payload["actions"]  # the incident's message shows who rolled back, to what
        assert [(a["actor"], a["status"], a["to_version"]) for a in shown] == [("cli:operator", "done", "1")]
        assert updates[0].status == "delivered"  # sent now, through the outbox's claims
        assert [a.incident_id for a in store.actions(model="recommender")] == [incident_id]

        # Retried (the terminal died before it printed): the alias is there, nothing is said again.
        assert main(["rollback", "recommender", "--config", config, "--reason", "bad deploy",
                     "--to-version", "1"]) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "noop"
        assert len(store.outbox_for_prefix(f"incident:{incident_id}")) == 2
    finally:
        store.close()
    lines = (tmp_path / "notifications.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "cli:operator" in lines[0]


def test_a_rollback_retried_after_the_terminal_died_mid_move_finishes_it_and_announces_it_once(tmp_path, capsys,
                                                                                                monkeypatch):
    """Ctrl-C (or a lost SSH session) after the alias moved, before the outcome was recorded:
    the retry answered "still in flight" and exited 1, and without a daemon cycle to finish
    it (the daemon down, the reason to use the terminal) every later rollback of the model
    did the same. The command now first finishes what is pending for the model, as a cycle
    would: the move is verified, not made again, and announced once."""
    from monitor.failpoints import ENV, FailPointError

    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    incident_id = _open_incident(tmp_path)
    argv = ["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", "1"]
    monkeypatch.setenv(ENV, "after_alias_move=raise")
    with pytest.raises(FailPointError):
        main(argv)
    monkeypatch.delenv(ENV)
    capsys.readouterr()

    assert main(argv) == 0, capsys.readouterr().err
    # the pending move finished first, the retry itself finds the model at its target
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "noop"
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    try:
        assert [(a.status, a.to_version) for a in store.actions(model="recommender")
                if a.kind in ("rollback", "promotion")] == [("done", "1"), ("noop", "1")]
        sink = [m for m in store.outbox_for_prefix(f"incident:{incident_id}") if m.notifier == "sink"]
        assert len(sink) == 1 and sink[0].status == "delivered"
    finally:
        store.close()
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "1"


def test_a_dry_run_moves_nothing_not_even_a_rollback_left_pending(tmp_path, capsys, monkeypatch):
    """A dry run is a question: with a rollback left pending before anything moved (killed
    right after its intent was recorded), `--dry-run` reports it in flight and moves
    nothing; the real command then finishes it."""
    from monitor.failpoints import ENV, FailPointError

    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    argv = ["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", "1"]
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):
        main(argv)
    monkeypatch.delenv(ENV)
    capsys.readouterr()

    assert main([*argv, "--dry-run"]) == 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "pending"
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"  # the dry run moved nothing
    assert main(argv) == 0
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "1"


def test_the_daemons_rollback_in_flight_is_left_to_the_daemon(tmp_path, capsys, monkeypatch):
    """A terminal finishes only a terminal's pending rollback: an automatic one in flight
    (retrying an unreachable layer) is the daemon's, and a terminal whose serving layer is
    not configured would end it as failed. The command reports it in flight."""
    from monitor.config import load_config
    from monitor.cycle.rollback_ask import RollbackAsk
    from monitor.failpoints import ENV, FailPointError
    from monitor.store.intents import RollbackIntentRow
    from monitor.vigil import Vigil

    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    daemon = Vigil(load_config(config), notifiers={})
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):
        daemon.operator.rollback(RollbackAsk(daemon.config.model("recommender"), "1", "automatic: incident 1",
                                             "vigil", None, time.time(), max_attempts=10))
    monkeypatch.delenv(ENV)
    capsys.readouterr()

    argv = ["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", "1"]
    assert main(argv) == 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "pending"
    with daemon.store.tx() as s:
        assert [(i.actor, i.status) for i in s.query(RollbackIntentRow).all()] == [("vigil", "pending")]
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"


def test_a_page_the_terminal_cannot_send_without_the_receivers_secret_is_left_to_the_daemon(tmp_path, capsys,
                                                                                           monkeypatch):
    """A terminal with the daemon's vigil.yaml but not its PagerDuty routing key (it lives in
    the daemon's Kubernetes secret): the rollback's announcement claimed the incident's queued
    PagerDuty page, failed on the missing key and put it back with a back-off, delaying the
    daemon's page by it (longer after earlier attempts). A receiver whose secret this process
    cannot read is left to the daemon, as one it lacks is."""
    monkeypatch.delenv("VIGIL_TEST_NO_SUCH_ROUTING_KEY", raising=False)
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    doc = yaml.safe_load(Path(config).read_text())
    doc["receivers"] = [{"name": "pagerduty", "kind": "pagerduty", "url": "http://127.0.0.1:9",
                         "routing_key_env": "VIGIL_TEST_NO_SUCH_ROUTING_KEY"}]
    Path(config).write_text(yaml.safe_dump(doc))
    incident_id = _open_incident(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    with store.tx() as s:  # the daemon's page of the incident, queued (PagerDuty was down a moment)
        page = store.enqueue(s, "pagerduty", MessageKind.INCIDENT, f"incident:{incident_id}", {"title": "t"},
                             time.time() - 60)
        page_id, due_at = page.id, page.next_attempt_at
    try:
        assert main(["rollback", "recommender", "--config", config, "--reason", "bad deploy",
                     "--to-version", "1"]) == 0
        rows = [m for m in store.outbox_for_prefix(f"incident:{incident_id}") if m.notifier == "pagerduty"]
        mine = [m for m in rows if m.id == page_id]
        assert [(m.status, m.attempts, m.next_attempt_at) for m in mine] == [("pending", 0, due_at)]
        assert all(m.attempts == 0 for m in rows)
    finally:
        store.close()


def _terminal_without_the_slack_token(tmp_path: Path, monkeypatch: Any) -> tuple[str, int]:
    """A config whose Slack token (`${VIGIL_TEST_SLACK_TOKEN:-}`) this terminal lacks, and an
    open incident of the model in #recsys."""
    monkeypatch.delenv("VIGIL_TEST_SLACK_TOKEN", raising=False)
    config = _config(tmp_path, "vigil.yaml", _registry(tmp_path), keyed=False)
    doc = yaml.safe_load(Path(config).read_text())
    doc["slack"]["bot_token"] = "${VIGIL_TEST_SLACK_TOKEN:-}"
    doc["models"][0]["owner_channel"] = "#recsys"
    Path(config).write_text(yaml.safe_dump(doc))
    return config, _open_incident(tmp_path)


def test_a_terminal_without_the_slack_token_leaves_the_announcement_to_the_daemons_slack(tmp_path, capsys,
                                                                                          monkeypatch):
    """vigil.yaml says `bot_token: ${SLACK_BOT_TOKEN:-}`; the daemon has the token (its
    Kubernetes secret), the on-call's terminal does not. The terminal took itself for a
    Slack-less install: the rollback's messages were written for the JSON-lines sink and
    "delivered" to a file on the laptop, and the incident's Slack thread never showed the
    rollback. They are written for the daemon's Slack now, and left to the daemon."""
    config, incident_id = _terminal_without_the_slack_token(tmp_path, monkeypatch)
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    with store.tx() as s:  # the daemon told people in Slack
        store.enqueue(s, "slack", MessageKind.INCIDENT, f"incident:{incident_id}:#recsys", {"title": "t"},
                      time.time() - 600)
    try:
        assert main(["rollback", "recommender", "--config", config, "--reason", "bad deploy",
                     "--to-version", "1"]) == 0, capsys.readouterr().err
        rows = [*store.outbox_for_prefix(f"incident:{incident_id}"), *store.outbox_for_prefix("rollback:recommender")]
        assert "sink" not in {m.notifier for m in rows}, [(m.notifier, m.key, m.status) for m in rows]
        slack = [m for m in rows if m.notifier == "slack"]
        assert all((m.status, m.attempts) == ("pending", 0) for m in slack)  # the daemon's to send
        shown = [a for m in slack for a in m.payload.get("actions", [])]
        assert [(a["actor"], a["status"], a["to_version"]) for a in shown] == [("cli:operator", "done", "1")]
    finally:
        store.close()
    assert not (tmp_path / "notifications.jsonl").exists()


def test_a_terminal_without_the_slack_token_leaves_the_announcement_to_slack_after_the_outbox_purge(
        tmp_path, capsys, monkeypatch):
    """The same, on an incident told in Slack more than `retention.delivered_outbox` (7 d)
    ago: its delivered rows were purged, only its message's ref (channel, ts) is left. The
    terminal found no Slack row, took the install for a Slack-less one, and the rollback's
    update went to the laptop's JSON-lines file again."""
    from monitor.store.tables import MessageRefRow

    config, incident_id = _terminal_without_the_slack_token(tmp_path, monkeypatch)
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    with store.tx() as s:  # the daemon's Slack message of it, its outbox row purged
        s.add(MessageRefRow(notifier="slack", key=f"incident:{incident_id}:#recsys",
                            ref={"channel": "C1", "ts": "1.1"}))
    try:
        assert main(["rollback", "recommender", "--config", config, "--reason", "bad deploy",
                     "--to-version", "1"]) == 0, capsys.readouterr().err
        rows = [*store.outbox_for_prefix(f"incident:{incident_id}"), *store.outbox_for_prefix("rollback:recommender")]
        assert "sink" not in {m.notifier for m in rows}, [(m.notifier, m.key, m.status) for m in rows]
        assert [m.status for m in rows if m.notifier == "slack"] and \
            all(m.status == "pending" for m in rows if m.notifier == "slack")
    finally:
        store.close()
    assert not (tmp_path / "notifications.jsonl").exists()


def test_a_blamed_version_asked_for_by_name_is_refused_naming_the_force_flag(tmp_path, capsys):
    """`vigil rollback recommender --to-version 2` after a rollback moved away from v2 said
    "... needs force=true and a reason: pass --to-version (and --force ...)": the person had
    passed --to-version, and force=true is the API's word. It names --force; with it, it goes."""
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    assert main(["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", "1"]) == 0
    capsys.readouterr()
    argv = ["rollback", "recommender", "--config", config, "--reason", "v2 fixed upstream", "--to-version", "2"]
    assert main(argv) == 64
    err = capsys.readouterr().err
    assert "v2 is blamed" in err and "--force" in err
    assert "pass --to-version" not in err and "force=true" not in err
    assert main([*argv, "--force"]) == 0, capsys.readouterr().err
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"
    capsys.readouterr()


def test_the_blamed_version_asked_for_while_it_serves_is_a_noop_saying_it_is_blamed(tmp_path, capsys):
    """As the API: nothing to move is a noop (exit 0), and it says the version serving is blamed."""
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    argv = ["rollback", "recommender", "--config", config, "--to-version"]
    assert main([*argv, "1", "--reason", "bad deploy"]) == 0
    assert main([*argv, "2", "--reason", "v1 lacks the fix", "--force"]) == 0
    capsys.readouterr()
    assert main([*argv, "2", "--reason", "make sure v2 serves"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "noop" and "v2" in out["detail"] and "blamed" in out["detail"], out
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"


def test_the_blamed_version_asked_for_after_the_alias_moved_by_hand_is_refused_saying_what_serves(tmp_path, capsys):
    """Vigil last saw the blamed v2 serving; someone set the alias to v1 by hand since. The ask
    is refused (a move to a blamed version needs --force); its detail must not also say v2 serves."""
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    argv = ["rollback", "recommender", "--config", config, "--to-version"]
    assert main([*argv, "1", "--reason", "bad deploy"]) == 0
    assert main([*argv, "2", "--reason", "v1 lacks the fix", "--force"]) == 0
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        registry.set_alias("recommender", "champion", "1")  # by hand, not yet polled
    capsys.readouterr()
    assert main([*argv, "2", "--reason", "make sure v2 serves"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "refused" and "serve v1" in out["detail"], out
    assert "v2 is serving" not in out["detail"], out["detail"]
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "1"
