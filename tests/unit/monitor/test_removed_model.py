"""A model taken out of the configuration (a reload, or a restart with the new file) left
its open incident open for ever: PagerDuty stayed triggered, the Alertmanager receiver
re-pushed it, Slack showed it open. Now it is resolved, once, through the outbox like any
resolve, with a reason people understand, and audited; a configured model's never is."""
from __future__ import annotations

import threading
import time
from typing import Any

import yaml

from monitor.daemon import Runtime, _reload, build_scheduler, run_daemon
from monitor.store.repository import IncidentRow
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config

PD = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY"}
REASON = "model removed from the configuration"


def sources() -> dict[str, Any]:
    return {"prometheus": {"url": "http://127.0.0.1:9", "step": "60s"}, "mlflow": {"tracking_uri": "http://127.0.0.1:9"}}


def write(tmp_path, models: list[dict[str, Any]]) -> str:
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "slack": {"sink_path": "n.jsonl"},
        "spool": {"directory": "spool"}, "schedule": {"interval": "60s", "lookback": "30m", "baseline": "1h"},
        "policy": {"slo_consecutive_cycles": 2, "resolve_after_cycles": 2}, "sources": sources(),
        "receivers": [PD], "models": models}))
    return str(path)


def paged(tmp_path, monkeypatch) -> tuple[Any, IncidentRow]:
    """A Vigil watching MODEL and fraud, MODEL's critical incident open and told."""
    monkeypatch.setenv("PD_ROUTING_KEY", "0" * 32)
    cfg = make_config(tmp_path, models=[model_config(), model_config("fraud")], sources=sources(), receivers=[PD],
                      slack={"sink_path": "n.jsonl"})
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers=None)
    vigil.run_cycle(MODEL, T0)
    vigil.run_cycle(MODEL, T0 + 60)
    [row] = vigil.store.incidents(model=MODEL, status="open")
    assert row.severity == "critical" and row.last_notified_at is not None
    assert [r.notifier for r in vigil.store.outbox_for_prefix(f"incident:{row.id}") if r.notifier == "pd"]
    return vigil, row


def last(vigil: Any, notifier: str, key: str) -> dict[str, Any]:
    rows = [r for r in vigil.store.outbox_for_prefix(key) if r.notifier == notifier and r.key == key]
    return max(rows, key=lambda r: r.id).payload


def test_a_reload_that_removes_a_model_resolves_its_open_incident_once(tmp_path, monkeypatch):
    vigil, row = paged(tmp_path, monkeypatch)
    runtime = Runtime(vigil, write(tmp_path, [model_config(), model_config("fraud")]))
    scheduler = build_scheduler(runtime)  # not started: its jobs are only rearranged
    _reload(runtime, scheduler)  # still configured: nothing changes
    assert vigil.store.incident(row.id).status == "open"
    runtime.config_path = write(tmp_path, [model_config("fraud")])
    before = len(vigil.store.outbox_for_prefix(f"incident:{row.id}"))
    told = {r.payload.get("channel") for r in vigil.store.outbox_for_prefix(f"incident:{row.id}:")}
    _reload(runtime, scheduler)
    done = vigil.store.incident(row.id)
    assert done.status == "resolved" and done.resolved_at is not None
    assert done.reasons[0] == REASON
    key = f"incident:{row.id}"
    assert last(vigil, "pd", key)["status"] == "resolved", "PagerDuty hears it resolved"
    chat = [r for r in vigil.store.outbox_for_prefix(key) if r.notifier != "pd"]
    assert any(r.payload.get("status") == "resolved" and r.kind == "incident" for r in chat), "the message edited"
    replies = [r.payload for r in chat if r.kind == "reply"]
    assert replies and replies[-1]["change"] == "resolved" and replies[-1]["reason"] == REASON
    assert {r.payload.get("channel") for r in vigil.store.outbox_for_prefix(f"{key}:")[before:]} <= told, \
        "only where its message is: the model's routes are gone with it"
    [entry] = [e for e in vigil.store.audit_entries() if e.action == "incident.resolve"]
    assert entry.target == key and entry.detail["reason"] == REASON and entry.detail["model"] == MODEL
    sent = len(vigil.store.outbox_for_prefix(key))
    _reload(runtime, scheduler)  # the same file again: nothing more to resolve
    assert len(vigil.store.outbox_for_prefix(key)) == sent
    assert [e.action for e in vigil.store.audit_entries()].count("incident.resolve") == 1


def test_a_daemon_started_without_the_model_resolves_its_open_incident(tmp_path, monkeypatch):
    vigil, row = paged(tmp_path, monkeypatch)
    from monitor.config import load_config

    started = make_vigil(load_config(write(tmp_path, [model_config("fraud")])), prometheus=incident_prometheus(),
                         notifiers=None, start=T0 + 120)
    stop, result = threading.Event(), []
    worker = threading.Thread(target=lambda: result.append(run_daemon(started.config, serve_api=False, vigil=started,
                                                                      stop=stop)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and started.store.incident(row.id).status == "open":
        time.sleep(0.1)
    stop.set()
    worker.join(timeout=15)
    assert result == [0]
    assert started.store.incident(row.id).status == "resolved"
    assert started.store.incident(row.id).reasons[0] == REASON


def test_two_replicas_resolving_at_once_send_one_resolve(tmp_path, monkeypatch):
    from monitor.cycle.removed import resolve_removed

    vigil, row = paged(tmp_path, monkeypatch)
    key = f"incident:{row.id}"
    before = len(vigil.store.outbox_for_prefix(key))
    go = threading.Barrier(2)
    results: list[Any] = []

    def replica() -> None:
        go.wait()
        results.append(resolve_removed(vigil, {"fraud"}))

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(len(r.resolved) for r in results) == [0, 1]
    pd_rows = [r for r in vigil.store.outbox_for_prefix(key)[before:] if r.notifier == "pd"]
    assert [r.payload["status"] for r in pd_rows] == ["resolved"]
    assert [e.action for e in vigil.store.audit_entries()].count("incident.resolve") == 1


def test_a_model_another_replica_still_runs_is_left_to_it(tmp_path, monkeypatch):
    """A rolling change: a replica with the old file holds the model's lease. Its incident
    stays open (that replica still judges it) until no live lease holds it."""
    from monitor.cycle.removed import resolve_removed
    from monitor.store.leases import ModelLeaseRow

    vigil, row = paged(tmp_path, monkeypatch)
    with vigil.store.tx() as s:
        s.add(ModelLeaseRow(model=MODEL, owner="old-replica", token=1, expires_at=time.time() + 600))
    swept = resolve_removed(vigil, {"fraud"}, me="new-replica")
    assert swept.resolved == [] and swept.deferred == [MODEL]
    assert vigil.store.incident(row.id).status == "open"
    with vigil.store.tx() as s:
        s.get(ModelLeaseRow, MODEL).expires_at = time.time() - 1  # that replica reloaded (or died)
    assert resolve_removed(vigil, {"fraud"}, me="new-replica").resolved == [row.id]


def test_a_cycle_still_running_on_the_replaced_configuration_defers_the_resolve_until_it_ends(tmp_path,
                                                                                             monkeypatch):
    """A cycle of the removed model still running on the old Vigil could write an "open"
    update after the resolve: the sweep waits for the last job on the replaced configuration,
    then resolves (on the job's own thread, whether or not leases tick)."""
    from monitor.runtime import Runtime as _Runtime

    vigil, row = paged(tmp_path, monkeypatch)
    runtime = _Runtime(vigil, None)
    new = make_vigil(make_config(tmp_path, models=[model_config("fraud")], sources=sources(), receivers=[PD],
                                 slack={"sink_path": "n.jsonl"}), prometheus=incident_prometheus(), notifiers=None)
    with runtime.current() as old:  # a cycle of MODEL, begun before the reload
        runtime.swap(new)
        runtime.sweep_removed()
        assert runtime.removed_left and vigil.store.incident(row.id).status == "open"
        assert old is vigil
    assert not runtime.removed_left
    resolved = new.store.incident(row.id)
    assert resolved.status == "resolved" and REASON in resolved.reasons[0]


def test_the_resolve_of_a_removed_model_shows_the_severity_told_not_one_a_silence_held(tmp_path, monkeypatch):
    """Told of a warning, the incident turned critical under a silence (never told); the model
    is then taken out of the configuration: its "resolved" shows the warning people saw."""
    from monitor.silence_ops import SilenceAsk, create

    monkeypatch.setenv("PD_ROUTING_KEY", "0" * 32)
    cfg = make_config(tmp_path, models=[model_config(), model_config("fraud")], sources=sources(), receivers=[PD],
                      slack={"sink_path": "n.jsonl"})
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers=None)
    create(vigil.store, SilenceAsk([f'model="{MODEL}"'], "retraining OPS-8", "olga", starts_at=T0 + 30,
                                   duration="2h"), "olga", T0 - 10)
    vigil.run_cycle(MODEL, T0)
    vigil.run_cycle(MODEL, T0 + 60)
    [row] = vigil.store.incidents(model=MODEL, status="open")
    assert row.severity == "critical"  # reached under the silence: never told
    runtime = Runtime(vigil, write(tmp_path, [model_config("fraud")]))
    _reload(runtime, build_scheduler(runtime))
    assert vigil.store.incident(row.id).status == "resolved"
    chat = [r for r in vigil.store.outbox_for_prefix(f"incident:{row.id}") if r.kind == "incident"
            and r.notifier != "pd"]
    assert chat[-1].payload["status"] == "resolved"
    assert chat[-1].payload["severity"] == "warning", chat[-1].payload["severity"]


def test_an_ack_of_a_removed_models_open_incident_edits_the_messages_people_have(tmp_path, monkeypatch):
    """Another replica (or this one, before its sweep) no longer has the model in its file;
    the incident is still open and someone acknowledges it there. The ack shows on the
    messages in the channels that were told, not in a new message in #vigil-alerts."""
    vigil, row = paged(tmp_path, monkeypatch)
    with vigil.store.tx() as s:
        channels = vigil.store.outbox.told_channels(s, row.id)
    assert channels and "#vigil-alerts" not in channels
    cfg = make_config(tmp_path, models=[model_config("fraud")], sources=sources(), receivers=[PD],
                      slack={"sink_path": "n.jsonl"})
    other = make_vigil(cfg, prometheus=incident_prometheus(), notifiers=None)
    other.operator.acknowledge(row.id, "api:owner", T0 + 90)
    acked = [r for r in other.store.outbox_for_prefix(f"incident:{row.id}") if r.created_at == T0 + 90]
    assert acked, "the ack reached no one"
    posted = sorted({r.key.split(":", 2)[2] for r in acked if r.key.count(":") == 2})
    assert posted == channels, f"the ack of the removed model's incident went to {posted}, told were {channels}"
    assert [r for r in acked if r.notifier == "pd"], "the ack never reached PagerDuty"
