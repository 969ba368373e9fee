"""Replicas on one PostgreSQL append to one audit chain: a rollback's outcome transaction that
loses the race for the next seq to another replica's entry is written again, so the
rollback reports its outcome instead of failing after the alias has moved."""
from __future__ import annotations

from monitor.cycle.rollback_intents import RollbackAsk
from tests.helpers_replicas import another_replica_auditing, fresh_schema_url
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry

TRIALS = 40


def test_a_concurrent_audit_append_never_fails_a_rollback_that_moved(tmp_path, postgres_url):
    url = fresh_schema_url(postgres_url)
    v = make_vigil(make_config(tmp_path, store={"url": url}), registry=(reg := serving_registry(versions=("1", "2"),
                                                                                                version="2")))
    m = v.config.model(MODEL)
    outcomes = []
    with another_replica_auditing(url):
        for trial in range(TRIALS):
            reg.aliases[(MODEL, "champion")] = "2"
            out = v.operator.rollback(RollbackAsk(m, "1", f"trial {trial}", "api:alice", None, T0 + trial))
            outcomes.append(out.status if out.status == "done" else f"{out.status}: {out.detail}")
    assert outcomes == ["done"] * TRIALS
    assert [e.action for e in v.store.audit_entries()].count("rollback.done") == TRIALS
