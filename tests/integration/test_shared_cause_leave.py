"""A member told alone at warning (its own page), escalated to critical while its shared
cause's group spoke for it (the group's critical page told the on-call), then leaves the
group while still open (a reload moved it to another team, `grouping.group_by` has team):
it pages as itself again. Its escalation was told already; saying "escalated to critical"
a second time in its thread, @-mentioning the on-call, tells people of it twice."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers_vigil import CTR_QUERY, P99_QUERY, T0, StubPrometheus, make_vigil, model_config, step_curve
from tests.integration.test_shared_cause import RANKING, SEL, _Sink, config, registry

pytestmark = pytest.mark.integration
GPU = {"selector": 'Hostname="gpu-node-1"'}
POLICY = {"slo_consecutive_cycles": 4, "resolve_after_cycles": 2}
BY_TEAM = {"group_by": ["cause_kind", "cause", "team"]}


def prometheus() -> StubPrometheus:
    """The recommender's p99 breaches at once (critical on its 4th cycle); the GPU it shares
    with the ranker saturates a cycle later, so the recommender pages alone first."""
    return StubPrometheus({f"DCGM_FI_DEV_GPU_UTIL{SEL}": step_curve(40, 99, T0 - 240),
                           P99_QUERY: step_curve(0.1, 0.8, T0 - 600),
                           'p99_of{model="ranker"}': lambda ts: np.full(len(ts), 0.1),
                           CTR_QUERY: lambda ts: np.full(len(ts), 0.05),
                           'ctr_of{model="ranker"}': lambda ts: np.full(len(ts), 0.05)})


def vigil_of(tmp_path: Path, team: str) -> Any:
    models = [model_config(gpu=GPU, labels={"team": team}),
              model_config("ranker", gpu=GPU, owner_channel=RANKING, labels={"team": "search"})]
    cfg = config(tmp_path, policy=POLICY, models=models, grouping=BY_TEAM)
    return make_vigil(cfg, prometheus=prometheus(), registry=registry(), notifiers={"sink": _Sink()})


def test_a_member_that_leaves_its_group_does_not_say_escalated_a_second_time(tmp_path):
    vigil = vigil_of(tmp_path, "search")
    for k in range(6):
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, T0 + 60 * k)
    rec = vigil.store.incident(1)
    assert rec is not None and rec.model == "recommender" and rec.severity == "critical"
    group_pages = [r.payload for r in vigil.store.outbox_for_prefix("group:1") if r.kind == "group"]
    assert any(p["severity"] == "critical" for p in group_pages), "the group's critical told the escalation"
    vigil = vigil_of(tmp_path, "recsys")  # a reload: the recommender's team, and so its group, changed
    steps = []
    for k in range(6, 12):
        for m in ("recommender", "ranker"):
            steps.append(vigil.run_cycle(m, T0 + 60 * k).step)
    own = [r for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier == "sink"]
    assert any(r.kind == "incident" and r.payload.get("severity") == "critical" for r in own), \
        "its own message shows the critical once it pages as itself"
    escalated = [r.payload["at"] - T0 for r in own if r.kind == "reply" and r.payload["change"] == "escalated"]
    assert escalated == [], f"the escalation its group told was said again at +{escalated} s"


def test_a_member_that_leaves_its_group_counts_its_reminder_from_the_groups_page(tmp_path, monkeypatch):
    """The group's critical page told the member's escalation: once the member leaves and
    pages as itself, its own `repeat_interval` reminder ("still critical", @-mentioning the
    on-call) counts from that page, not from its own warning page before it."""
    monkeypatch.setitem(POLICY, "repeat_interval", 400)
    vigil = vigil_of(tmp_path, "search")
    for k in range(6):
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, T0 + 60 * k)
    paged = min(r.payload["at"] for r in vigil.store.outbox_for_prefix("group:1")
                if r.kind == "group" and r.payload["severity"] == "critical")
    vigil = vigil_of(tmp_path, "recsys")
    for k in range(6, 12):
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, T0 + 60 * k)
    repeats = [r.payload["at"] - T0 for r in vigil.store.outbox_for_prefix("incident:1")
               if r.kind == "reply" and r.payload["change"] == "repeated"]
    assert all(at >= paged - T0 + 400 for at in repeats), \
        f"reminded at +{repeats} s, {400} s after its own page but not after its group's at +{paged - T0:.0f} s"
