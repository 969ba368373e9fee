"""A release shipped with a config edit whose KPI query names a metric that does not exist:
the KPI reads no series from the first cycle after it. The deploy was the incident's top
cause, with "roll back to v1" as the suggested action; a misspelt metric name is no
version's doing, and nothing may be rolled back for it (tests/unit/correlators/test_no_data_blame.py
holds the rule)."""
from __future__ import annotations

from typing import Any

import numpy as np

from alerts.payload import suggested_action
from monitor.store.intents import RollbackIntentRow
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)

WRONG = 'sum(rate(clickz_total{model="recommender"}[5m])) / sum(rate(impressions_total{model="recommender"}[5m]))'
POLICY = {"rollback": {"min_confidence": 0.3}}  # a guard that would not hold a blamed deploy back


def test_a_wrong_metric_kpi_after_a_deploy_blames_the_query_and_records_no_rollback(tmp_path: Any) -> None:
    reg = serving_registry(version="1")
    prom = StubPrometheus({CTR_QUERY: lambda ts: np.full(len(ts), 0.05), P99_QUERY: lambda ts: np.full(len(ts), 0.1)})
    before = make_vigil(make_config(tmp_path, policy=POLICY), prometheus=prom, registry=reg, start=T0 - 1800)
    for t in (T0 - 1800, T0 - 1740, T0 - 1680):
        assert before.run_cycle(MODEL, t).incident is None
    before.close()
    # The release: v2 on the alias, and the KPI's query edited for it with a misspelt metric.
    reg.add_version(MODEL, "2", created_at=T0 - 900)
    reg.aliases[(MODEL, "champion")] = "2"
    bad = make_config(tmp_path, policy=POLICY, models=[model_config(kpis=[{"name": "ctr", "query": WRONG}])])
    after = make_vigil(bad, prometheus=prom, registry=reg, start=T0 - 840)
    reports = [after.run_cycle(MODEL, T0 - 840 + 60 * i) for i in range(8)]
    assert [(d.version, d.previous_version) for d in after.store.deploys(MODEL)][-1] == ("2", "1")
    [row] = after.store.incidents(model=MODEL)
    causes = after.store.incident(row.id).causes
    assert causes and causes[0]["kind"] == "no_data" and causes[0]["entity"] == "ctr", causes
    assert not [c for c in causes if c["kind"] == "deploy"], causes
    said = suggested_action(causes, [], "open", MODEL)
    assert "metric name" in said and "roll back" not in said.lower(), said
    assert all(r.rollback is None or not r.rollback.get("allowed") for r in reports)
    assert not [a for a in after.store.actions(model=MODEL) if a.kind == "rollback"]
    with after.store.tx() as s:
        assert s.query(RollbackIntentRow).count() == 0
    assert reg.moves == []
    after.close()
