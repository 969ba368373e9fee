"""The JSON-lines sink used when there is no Slack token."""
from __future__ import annotations

import io
import json

import numpy as np

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from alerts.sink import JsonlSink

NOW = 1_795_259_999.0


def incident_payload(**over):
    p = {
        "incident_id": 3, "model": "recommender", "severity": "warning", "status": "open",
        "title": "recommender: user_age drifted", "channel": "#recsys-alerts", "opened_at": NOW, "updated_at": NOW,
        "resolved_at": None, "acknowledged_by": None,
        "findings": [{"kind": "feature_drift", "entity": "user_age", "value": 0.14, "threshold": 0.1,
                      "statistic": "psi", "window_start": NOW - 3600, "window_end": NOW, "onset": NOW, "score": 0.5}],
        "causes": [{"kind": "upstream_drift", "entity": "feature user_age", "score": 0.6,
                    "explanation": "Input changed with no deploy.", "evidence": {}, "deploy": None}],
        "suggested_action": "Check the upstream feature pipeline.", "actions": [],
        "links": {"grafana": None, "drift_report": None}, "cold_start": False,
    }
    p.update(over)
    return p


def test_each_delivery_is_one_json_line_and_a_console_line(tmp_path):
    path = tmp_path / "out" / "notifications.jsonl"
    console = io.StringIO()
    sink = JsonlSink(path, stream=console, clock=lambda: NOW + 5)
    r1 = sink.deliver(OutboxMessage(1, "sink", MessageKind.INCIDENT, "incident:3", incident_payload()))
    r2 = sink.deliver(OutboxMessage(2, "sink", MessageKind.INCIDENT, "incident:3",
                                    incident_payload(status="resolved", resolved_at=NOW + 600), ref=r1.ref))
    assert (r1.status, r1.ref, r2.ref) == (DeliveryStatus.DELIVERED, {"line": 1}, {"line": 2})

    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["id"] for x in lines] == [1, 2]
    assert lines[0]["kind"] == "incident" and lines[0]["key"] == "incident:3" and lines[0]["notifier"] == "sink"
    assert lines[0]["delivered_at"] == NOW + 5
    assert lines[1]["payload"]["status"] == "resolved"

    out = console.getvalue().splitlines()
    assert len(out) == 2
    assert "recommender: user_age drifted" in out[0] and "#recsys-alerts" in out[0]
    assert "feature user_age (60%)" in out[0]
    assert "Resolved" in out[1]


def test_line_numbers_continue_after_a_restart(tmp_path):
    path = tmp_path / "n.jsonl"
    JsonlSink(path, console=False).deliver(OutboxMessage(1, "sink", MessageKind.INCIDENT, "incident:3",
                                                         incident_payload()))
    r = JsonlSink(path, console=False).deliver(OutboxMessage(2, "sink", MessageKind.DEPLOY, "deploy:9",
                                                             {"model": "recommender", "alias": "champion",
                                                              "version": "4", "previous_version": "3"}))
    assert r.ref == {"line": 2}
    assert len(path.read_text().splitlines()) == 2


def test_numpy_and_nan_in_a_payload_still_make_valid_json(tmp_path):
    path = tmp_path / "n.jsonl"
    p = incident_payload()
    p["findings"][0]["value"] = np.float64("nan")
    p["findings"][0]["score"] = np.float32(0.5)
    r = JsonlSink(path, console=False).deliver(OutboxMessage(1, "sink", MessageKind.INCIDENT, "incident:3", p))
    assert r.status == DeliveryStatus.DELIVERED
    line = json.loads(path.read_text())
    assert line["payload"]["findings"][0]["value"] is None


def test_rollback_and_deploy_console_lines(tmp_path):
    console = io.StringIO()
    sink = JsonlSink(tmp_path / "n.jsonl", stream=console)
    sink.deliver(OutboxMessage(1, "sink", MessageKind.ROLLBACK, "rollback:1",
                               {"model": "recommender", "from_version": "3", "to_version": "2",
                                "status": "dry_run", "reason": "dry-run mode"}))
    sink.deliver(OutboxMessage(2, "sink", MessageKind.DEPLOY, "deploy:1",
                               {"model": "recommender", "alias": "champion", "version": "3", "previous_version": "2"}))
    out = console.getvalue().splitlines()
    assert out[0] == "[vigil] ROLLBACK: Rollback of recommender v3 → v2: dry run — dry-run mode"
    assert out[1] == "[vigil] DEPLOY recommender champion -> v3 (was v2)"


def test_unwritable_path_fails_with_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sink = JsonlSink(blocker / "n.jsonl", console=False)  # parent is a file
    r = sink.deliver(OutboxMessage(1, "sink", MessageKind.INCIDENT, "incident:3", incident_payload()))
    assert r.status in (DeliveryStatus.FAILED, DeliveryStatus.RETRY)
    assert str(blocker) in r.error


def test_a_line_already_written_for_an_outbox_row_is_found_not_written_again(tmp_path):
    path = tmp_path / "notifications.jsonl"
    sink = JsonlSink(path, console=False)
    first = OutboxMessage(1, "sink", MessageKind.INCIDENT, "incident:3", incident_payload(incident_id=1))
    second = OutboxMessage(2, "sink", MessageKind.INCIDENT, "incident:3", incident_payload(incident_id=2))
    assert sink.find_delivered(first) is None  # no file yet
    sink.deliver(first)
    sink.deliver(second)
    found = JsonlSink(path, console=False).find_delivered(second)  # a fresh process after a crash
    assert found is not None and found.status == DeliveryStatus.DELIVERED and found.ref == {"line": 2}
    other_store = OutboxMessage(2, "sink", MessageKind.INCIDENT, "incident:9", incident_payload())
    assert sink.find_delivered(other_store) is None, "same id, another key: not ours"


def test_a_torn_last_line_is_not_a_delivery_and_the_next_line_starts_fresh(tmp_path):
    path = tmp_path / "notifications.jsonl"
    msg = OutboxMessage(1, "sink", MessageKind.INCIDENT, "incident:3", incident_payload())
    path.write_text('{"id": 1, "notifier": "sink", "kind": "incid')  # killed mid-write
    sink = JsonlSink(path, console=False)
    assert sink.find_delivered(msg) is None
    assert sink.deliver(msg).ref == {"line": 2}
    lines = path.read_text().splitlines()
    assert json.loads(lines[1])["id"] == 1 and sink.find_delivered(msg).ref == {"line": 2}
