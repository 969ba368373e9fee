"""Replicas on one PostgreSQL append to one audit chain: a canary's promotion suggestion
(its run's status, its message and its audit entry in one transaction) that loses the race
for the next seq to another replica's entry is written again, instead of failing the
model's cycle after its incident was already written."""
from __future__ import annotations

from typing import Any

from monitor.cycle.canary import CanaryJudgement
from tests.helpers_replicas import another_replica_auditing, fresh_schema_url
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config

TRIALS = 30


def test_promotion_suggestions_while_another_replica_audits_all_succeed(tmp_path, postgres_url):
    url = fresh_schema_url(postgres_url)
    cfg = make_config(tmp_path, models=[model_config(canary={"alias": "challenger", "window": "1h"})],
                      store={"url": url})
    v = make_vigil(cfg)
    m = v.config.model(MODEL)
    outcomes: list[str] = []
    with another_replica_auditing(url):
        for trial in range(TRIALS):
            judged = CanaryJudgement(champion="1", challenger=str(100 + trial), verdict=Any)  # type: ignore[arg-type]
            try:
                v.canary._suggest(m, judged, 2, T0 + trial)
                outcomes.append("ok")
            except Exception as e:  # what failed the model's cycle
                outcomes.append(f"{type(e).__name__}: {str(e)[:80]}")
    assert outcomes == ["ok"] * TRIALS
    assert [e.action for e in v.store.audit_entries()].count("canary.promotion_suggested") == TRIALS
    v.store.close()
