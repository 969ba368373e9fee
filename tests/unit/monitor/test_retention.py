"""Retention (monitor/store/retention.py, `retention:` in the config): what the purge job
and `vigil db purge` delete, what they never touch (the audit log, open incidents,
undelivered notifications), and a config that would purge samples a cycle still reads."""
from __future__ import annotations

import json

import pytest

from alerts.lifecycle import IncidentStatus
from alerts.outbox import OutboxStatus
from monitor.cli import main
from monitor.config import ConfigError
from monitor.config_retention import DAY, RetentionConfig
from monitor.store.repository import ActionRow, IncidentRow, OutboxRow, Store
from monitor.store.retention import purge
from tests.helpers_vigil import make_config

NOW = 1_800_000_000.0


def _incident(store: Store, status: IncidentStatus, resolved_at: float | None, *, action: bool = False) -> int:
    with store.tx() as s:
        row = IncidentRow(model="m", status=status, severity="warning", title="t", onset=0, opened_at=0,
                          updated_at=0, resolved_at=resolved_at, cold_start=False, reasons=[], findings=[],
                          causes=[], fingerprint="f")
        s.add(row)
        s.flush()
        if action:
            s.add(ActionRow(model="m", kind="rollback", incident_id=row.id, from_version="2", to_version="1",
                            status="done", reason="r", detail="", actor="vigil", dry_run=False, at=0))
        return row.id


def _outbox(store: Store, status: OutboxStatus, delivered_at: float | None) -> None:
    with store.tx() as s:
        s.add(OutboxRow(notifier="sink", kind="incident", key="k", payload={}, status=status, attempts=1,
                        created_at=0, next_attempt_at=0, delivered_at=delivered_at))


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    yield s
    s.close()


def test_samples_past_retention_are_deleted_per_model_and_newer_ones_kept(store):
    for model in ("a", "b"):
        store.add_samples(model, [(NOW - 20 * DAY + i, {"x": i}) for i in range(250)])
        store.add_samples(model, [(NOW - 1 * DAY, {"x": -1})])
    result = purge(store, RetentionConfig(samples=14 * DAY, batch_rows=100), NOW)
    assert result.samples == 500  # in batches of 100, every one
    assert store.samples("a", 0, NOW) == [(NOW - DAY, {"x": -1})]
    assert store.samples("b", 0, NOW) == [(NOW - DAY, {"x": -1})]


def test_resolved_incidents_go_with_their_report_and_open_ones_and_actions_stay(store):
    old = _incident(store, IncidentStatus.RESOLVED, NOW - 400 * DAY, action=True)
    recent = _incident(store, IncidentStatus.RESOLVED, NOW - 10 * DAY)
    still_open = _incident(store, IncidentStatus.OPEN, None)
    store.save_drift_report(old, "<html>old</html>", NOW - 400 * DAY)
    result = purge(store, RetentionConfig(resolved_incidents=365 * DAY, drift_reports=None), NOW)
    assert result.resolved_incidents == 1
    assert store.incident(old) is None and store.drift_report(old) is None
    assert store.incident(recent) is not None and store.incident(still_open) is not None
    [action] = store.actions(model="m")  # the rollback's record stays, unlinked; the audit log has the rest
    assert action.incident_id is None and action.status == "done"


def test_a_resolved_incident_that_was_part_of_a_shared_cause_group_is_purged(store):
    from monitor.store.groups import AlertGroupRow, GroupMemberRow, join

    old = _incident(store, IncidentStatus.RESOLVED, NOW - 400 * DAY)
    with store.tx() as s:  # the foreign key from the group's member row holds (SQLite enforces it here)
        group = AlertGroupRow(key="gpu|node-1", open_key=None, cause_kind="gpu", cause="node-1",
                              created_at=0, resolved_at=NOW - 400 * DAY)
        s.add(group)
        s.flush()
        join(s, group, "m", old, "warning", False, {}, 0)
    assert purge(store, RetentionConfig(resolved_incidents=365 * DAY), NOW).resolved_incidents == 1
    assert store.incident(old) is None
    with store.tx() as s:
        assert s.query(GroupMemberRow).count() == 0 and s.query(AlertGroupRow).count() == 1


def test_drift_reports_past_retention_are_deleted_and_the_incident_stays(store):
    incident = _incident(store, IncidentStatus.OPEN, None)
    store.save_drift_report(incident, "<html>r</html>", NOW - 100 * DAY)
    assert purge(store, RetentionConfig(drift_reports=90 * DAY), NOW).drift_reports == 1
    assert store.drift_report(incident) is None and store.incident(incident) is not None


def test_only_delivered_notifications_are_purged(store):
    _outbox(store, OutboxStatus.DELIVERED, NOW - 8 * DAY)
    _outbox(store, OutboxStatus.DELIVERED, NOW - 1 * DAY)
    _outbox(store, OutboxStatus.FAILED, None)
    _outbox(store, OutboxStatus.PENDING, None)
    assert purge(store, RetentionConfig(delivered_outbox=7 * DAY), NOW).delivered_outbox == 1
    assert store.outbox_counts() == {"delivered": 1, "failed": 1, "pending": 1}


def test_the_audit_log_is_never_purged(store):
    for i in range(5):
        store.audit("vigil", "incident.open", f"incident:{i}", {}, now=NOW - 1000 * DAY)
    before = store.audit_entries()
    result = purge(store, RetentionConfig(samples=1 * DAY, drift_reports=1 * DAY, resolved_incidents=1 * DAY,
                                          delivered_outbox=1 * DAY), NOW)
    assert store.audit_entries() == before and result.audit_head_seq == 5


def test_a_dry_run_counts_and_deletes_nothing_and_null_keeps_forever(store):
    store.add_samples("a", [(NOW - 30 * DAY, {"x": 1})])
    assert purge(store, RetentionConfig(samples=14 * DAY), NOW, dry_run=True).samples == 1
    assert purge(store, RetentionConfig(samples=None), NOW).samples == 0
    assert len(store.samples("a", 0, NOW)) == 1


def test_retention_shorter_than_the_window_a_cycle_reads_is_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        make_config(tmp_path, retention={"samples": "1h"})  # lookback 30m + baseline 1h
    assert "retention.samples: expected at least schedule.lookback + schedule.baseline (5400 s)" in str(refused.value)


def test_vigil_db_purge_reports_what_it_deleted(tmp_path, capsys):
    cfg_path = tmp_path / "vigil.yaml"
    cfg_path.write_text(f"store: {{url: 'sqlite:///{tmp_path / 'vigil.db'}'}}\n"
                        "retention: {samples: 2d}\n"
                        "sources: {prometheus: {url: 'http://127.0.0.1:9'}, mlflow: {tracking_uri: 'http://127.0.0.1:9'}}\n"
                        "models: [{name: m, registry_name: m}]\n")
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    import time

    store.add_samples("m", [(time.time() - 3 * DAY, {"x": 1}), (time.time(), {"x": 2})])
    store.close()
    assert main(["db", "purge", "--config", str(cfg_path), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 1
    assert main(["db", "purge", "--config", str(cfg_path)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["samples"] == 1 and got["dry_run"] is False and got["audit_head_seq"] == 0


def test_the_daemon_schedules_the_purge_and_its_job_purges(tmp_path):
    from monitor.daemon import Runtime, _purge_job, build_scheduler
    from tests.helpers_vigil import make_vigil

    vigil = make_vigil(make_config(tmp_path, retention={"samples": "2d", "purge_interval": "10m"}))
    runtime = Runtime(vigil, None)
    job = build_scheduler(runtime).get_job("retention-purge")
    assert job is not None and job.trigger.interval.total_seconds() == 600
    vigil.store.add_samples("m", [(vigil.now() - 3 * DAY, {"x": 1}), (vigil.now(), {"x": 2})])
    _purge_job(runtime)
    assert [r for _, r in vigil.store.samples("m", 0, vigil.now() + 1)] == [{"x": 2}]


def test_a_later_incident_never_edits_the_messages_of_a_purged_one(store):
    """SQLite numbers a new row after the highest one left: once every incident is purged
    the next one gets an old id again. Its messages must be new posts and pages, not edits
    of the year-old Slack message (nobody is notified of an edit) under the old refs."""
    from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind

    def deliver_all(at: float) -> list[dict | None]:
        refs = []
        for claim in store.outbox.claim_due(at):
            refs.append(claim.message.ref)
            ref = {"channel": "C1", "ts": f"{at}"} if claim.message.notifier == "slack" else {"dedup": "x"}
            store.outbox.record(claim, DeliveryResult(DeliveryStatus.DELIVERED, ref=ref), at, 15.0)
        return refs

    def notify(incident: int, at: float) -> None:
        with store.tx() as s:
            store.enqueue(s, "slack", MessageKind.INCIDENT, f"incident:{incident}:#alerts", {}, at)
            store.enqueue(s, "pagerduty", MessageKind.INCIDENT, f"incident:{incident}", {}, at)

    old = _incident(store, IncidentStatus.RESOLVED, NOW - 400 * DAY)
    notify(old, NOW - 400 * DAY)
    assert deliver_all(NOW - 400 * DAY) == [None, None]
    assert purge(store, RetentionConfig(resolved_incidents=365 * DAY), NOW).resolved_incidents == 1
    new = _incident(store, IncidentStatus.OPEN, None)  # the same id as `old` on SQLite
    notify(new, NOW)
    assert deliver_all(NOW) == [None, None]  # first messages of their keys: posted, not edits


def test_the_purge_keeps_the_samples_a_rolling_reference_reads(tmp_path):
    """policy.reference_after_cold_start: rolling over 20 days, samples kept 14: the purge
    cut the rolling reference to its last 14 days, and drift was judged against a
    reference the config never asked for. The samples it reads now stay; older ones go."""
    from monitor.daemon import Runtime, _purge_job
    from tests.helpers_vigil import MODEL, make_vigil

    cfg = make_config(tmp_path, retention={"samples": "14d"},
                      policy={"reference_after_cold_start": "rolling", "rolling_reference": "20d"})
    vigil = make_vigil(cfg)
    now = vigil.now()
    vigil.store.add_samples(MODEL, [(now - 19 * DAY, {"x": 1}), (now - 25 * DAY, {"x": 2})])
    _purge_job(Runtime(vigil, None))
    assert [r for _, r in vigil.store.samples(MODEL, 0, now)] == [{"x": 1}]


def test_purging_incidents_in_many_batches_reads_each_message_ref_once(store, monkeypatch):
    """Each batch of purged incidents read every `incident:%` message ref again: on a store
    of a year of incidents (hundreds of thousands of refs) the purge took minutes, holding a
    transaction per batch. Now each ref is looked at once per purge, whatever the batches."""
    from sqlalchemy import insert, select

    from monitor.store import retention
    from monitor.store.repository import MessageRefRow

    with store.tx() as s:
        s.execute(insert(IncidentRow), [
            {"model": "m", "status": IncidentStatus.RESOLVED, "severity": "warning", "title": "t", "onset": 0,
             "opened_at": 0, "updated_at": 0, "resolved_at": NOW - (400 if i < 300 else 10) * DAY,
             "cold_start": False, "reasons": [], "findings": [], "causes": [], "fingerprint": "f"} for i in range(400)])
        ids = sorted(s.scalars(select(IncidentRow.id)))
        s.execute(insert(MessageRefRow), [{"notifier": n, "key": k, "ref": {}} for i in ids for n, k in (
            ("slack", f"incident:{i}:#alerts"), ("pagerduty", f"incident:{i}"))] +
            [{"notifier": "slack", "key": "rollback:m", "ref": {}}])
    seen = []
    real = retention._incident_of
    monkeypatch.setattr(retention, "_incident_of", lambda key: seen.append(key) or real(key))

    result = purge(store, RetentionConfig(resolved_incidents=365 * DAY, batch_rows=100), NOW)

    assert result.resolved_incidents == 300
    with store.tx() as s:
        left = set(s.scalars(select(MessageRefRow.key)))
    assert left == {"rollback:m"} | {f"incident:{i}:#alerts" for i in ids[300:]} | {f"incident:{i}" for i in ids[300:]}
    assert len(seen) <= 2 * len(ids), len(seen)  # each batch read every ref: 1800 before


def test_refs_a_cut_short_purge_left_go_with_the_next_purge(store):
    """A purge stopped between its incident batches and its refs pass (a restart, a crash)
    left the refs of incidents already deleted, and no later purge looked at them again:
    they stayed for ever. The next purge that deletes incidents takes them too."""
    from sqlalchemy import delete, insert, select

    from monitor.store.repository import MessageRefRow

    gone, old, recent = (_incident(store, IncidentStatus.RESOLVED, NOW - d * DAY) for d in (400, 400, 10))
    with store.tx() as s:
        s.execute(insert(MessageRefRow), [{"notifier": "slack", "key": f"incident:{i}:#alerts", "ref": {}}
                                          for i in (gone, old, recent)])
        s.execute(delete(IncidentRow).where(IncidentRow.id == gone))  # the cut-short purge's incident batch
    result = purge(store, RetentionConfig(resolved_incidents=365 * DAY, batch_rows=100), NOW)
    assert result.resolved_incidents == 1
    with store.tx() as s:
        assert set(s.scalars(select(MessageRefRow.key))) == {f"incident:{recent}:#alerts"}


def test_notifications_a_silence_held_back_are_purged_as_delivered_ones_are(store):
    for held_at in (NOW - 8 * DAY, NOW - 1 * DAY):  # `next_attempt_at`: when the silence held it back
        with store.tx() as s:
            s.add(OutboxRow(notifier="slack", kind="reply", key="incident:1:#c", payload={},
                            status=OutboxStatus.SUPPRESSED, attempts=1, created_at=held_at - 60,
                            next_attempt_at=held_at, last_error="suppressed by silence 3"))
    assert purge(store, RetentionConfig(delivered_outbox=7 * DAY), NOW).delivered_outbox == 1
    assert store.outbox_counts() == {"suppressed": 1}
