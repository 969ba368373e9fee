"""Other models' open incidents, as the inhibition stage sees them: labelled once per
change of the row, not loaded again by each of a thousand cycles (issue 17)."""
from __future__ import annotations

from sqlalchemy import event

from monitor.cycle.suppress import FiringLabels
from monitor.store.repository import IncidentRow, IncidentStatus, Store
from tests.helpers_vigil import make_config, model_config


def _open(store: Store, model: str, severity: str) -> int:
    with store.tx() as s:
        row = IncidentRow(model=model, status=IncidentStatus.OPEN, severity=severity, title="t", onset=0,
                          opened_at=0, updated_at=0, resolved_at=None, cold_start=False, reasons=[],
                          findings=[], causes=[], fingerprint="f")
        s.add(row)
        s.flush()
        return row.id


def test_labels_follow_the_rows_and_only_changed_rows_are_loaded(tmp_path):
    cfg = make_config(tmp_path, models=[model_config("a"), model_config("b"), model_config("c")])
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    b, c = _open(store, "b", "warning"), _open(store, "c", "critical")
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    labels = FiringLabels()

    def seen(model: str) -> set[tuple[str, str]]:
        with store.tx() as s:
            return {(x["model"], x["severity"]) for x in labels.others(s, cfg, model)}

    assert seen("a") == {("b", "warning"), ("c", "critical")}
    assert seen("b") == {("c", "critical")}  # a model's own incident is not an "other"
    statements.clear()
    seen("a")
    assert not any("findings" in q for q in statements), "nothing changed: no full row is loaded again"
    with store.tx() as s:
        row = s.get(IncidentRow, b)
        row.severity, row.updated_at = "critical", 60.0
        s.get(IncidentRow, c).status = IncidentStatus.RESOLVED
    assert seen("a") == {("b", "critical")}  # escalation seen, the resolved one gone


def test_a_shared_cause_is_muted_by_its_members_silences_without_loading_their_findings(tmp_path):
    """Every model's cycle asks whether each firing shared cause is muted (all its open
    members silenced). It used to load every member's whole incident (findings, causes) in
    every cycle; the members' labels now come from the same read as the other incidents'."""
    from monitor.cycle.suppress import read_suppression
    from monitor.silence_ops import SilenceAsk, create
    from monitor.store import groups

    cfg = make_config(tmp_path, models=[model_config("a"), model_config("b"), model_config("c")])
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    b, c = _open(store, "b", "warning"), _open(store, "c", "warning")
    with store.tx() as s:
        group = groups.create_in(s, "gpu|node-1", "gpu", "node-1", 0.0)
        for model, incident in (("b", b), ("c", c)):
            groups.join(s, group, model, incident, "warning", True, {}, 0.0)
    labels, t = FiringLabels(), 3600.0

    def shared_cause_fires() -> bool:
        firing = read_suppression(store, cfg, cfg.model("a"), t, [], labels).firing
        return any(x.get("alertname") == "SharedCause" for x in firing)

    assert shared_cause_fires()
    create(store, SilenceAsk(['model="b"'], "maintenance", "alice", duration="2h"), "api:alice", t)
    assert shared_cause_fires(), "one member silenced: the cause still pages for the other"
    create(store, SilenceAsk(['model="c"'], "maintenance", "alice", duration="2h"), "api:alice", t)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert not shared_cause_fires(), "every member silenced: the shared cause is muted"
    assert not any("findings" in q for q in statements), statements
