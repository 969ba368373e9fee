"""Replicas on one PostgreSQL append to one audit chain: a silence made or expired while
another replica appends an audit entry loses the race for the next seq now and then; it
is written again, so the operator gets their silence instead of an HTTP 500."""
from __future__ import annotations

from monitor import silence_ops
from monitor.silence_ops import SilenceAsk
from monitor.store import silences
from monitor.store.repository import Store
from tests.helpers_replicas import another_replica_auditing, fresh_schema_url

T0 = 1_800_000_000.0
TRIALS = 40


def test_silences_made_and_expired_while_another_replica_audits_all_succeed(postgres_url):
    url = fresh_schema_url(postgres_url)
    store = Store(url)
    outcomes: list[str] = []
    with another_replica_auditing(url):
        for trial in range(TRIALS):
            try:
                made = silence_ops.create(store, SilenceAsk(['model="fraud"'], f"trial {trial}", "alice",
                                                            duration="1h"), "api:alice", T0 + trial)
                assert made.id is not None
                silence_ops.expire(store, made.id, "api:alice", T0 + trial + 1)
                outcomes.append("ok")
            except Exception as e:  # what the API would have answered with a 500
                outcomes.append(f"{type(e).__name__}: {str(e)[:80]}")
    assert outcomes == ["ok"] * TRIALS
    actions = [e.action for e in store.audit_entries()]
    assert actions.count("silence.create") == TRIALS and actions.count("silence.expire") == TRIALS
    with store.tx() as s:  # one row per silence made: a retried transaction left no extra one
        assert len(silences.page(s, T0 + TRIALS + 10, None, 1000, 0)[0]) == TRIALS
    store.close()
