"""A shared cause's message lists each member's evidence. When a member's evidence changes
as its own message would be updated for (a new finding: the KPI falls too), the group's
message is updated as well (an edit after group_interval, which tells no one), so it does
not show stale evidence; a number that only moves (as for a member's own message) edits nothing."""
from __future__ import annotations

import numpy as np
import pytest

from alerts.slack import SlackNotifier
from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import CTR_QUERY, ONCALL, OWNER, P99_QUERY, T0, StubPrometheus, make_vigil, step_curve
from tests.integration.test_shared_cause import RANKING, SEL, TOKEN, config, cycles, registry

pytestmark = pytest.mark.integration


def prometheus() -> StubPrometheus:
    """Both models on one saturated GPU breach their latency SLO; from T0 + 600 the
    recommender's CTR falls 10 % too; from T0 + 1500 its p99 only moves (0.8 -> 0.9 s)."""
    return StubPrometheus({
        f"DCGM_FI_DEV_GPU_UTIL{SEL}": step_curve(40, 99, T0 - 900),
        P99_QUERY: lambda ts: np.where(ts >= T0 + 1500, 0.9, np.where(ts >= T0 - 600, 0.8, 0.1)),
        'p99_of{model="ranker"}': step_curve(0.1, 0.8, T0 - 600),
        CTR_QUERY: step_curve(0.05, 0.045, T0 + 600),
        'ctr_of{model="ranker"}': lambda ts: np.full(len(ts), 0.05)})


def test_a_members_new_finding_updates_the_groups_message_without_paging(tmp_path):
    with FakeSlack(token=TOKEN, channels=("recsys-alerts", "ml-oncall", "ranking-alerts")) as slack:
        notifier = SlackNotifier(TOKEN, base_url=slack.base_url, max_rate_limit_retries=0, timeout_s=5.0)
        vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(),
                           notifiers={"slack": notifier})
        cycles(vigil, [T0 + 60 * k for k in range(10)])  # the group pages; nothing new for a while
        (msg,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
        assert "share one cause" in msg.text and "ctr" not in str(msg.versions[-1]["blocks"])
        replies = len(slack.thread(OWNER, msg.ts))
        own_ctr = [f for f in vigil.store.incidents(model="recommender")[0].findings if f["entity"] == "ctr"]
        assert own_ctr == []
        cycles(vigil, [T0 + 60 * k for k in range(10, 20)])  # the CTR falls: a new finding
        assert [f for f in vigil.store.incidents(model="recommender")[0].findings if f["kind"] == "kpi_drop"]
        (msg,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
        assert "ctr" in str(msg.versions[-1]["blocks"]), \
            f"the group's message still shows the members' old evidence: {msg.versions[-1]['blocks']}"
        assert len(slack.thread(OWNER, msg.ts)) == replies, "an edit for new evidence tells no one"
        assert len([m for m in slack.messages(ONCALL) if not m.thread_ts]) == 1
        assert len([m for m in slack.messages(RANKING) if not m.thread_ts]) == 1
        edits = len(msg.versions)
        cycles(vigil, [T0 + 60 * k for k in range(20, 32)])  # only the p99 value moves
        (msg,) = [m for m in slack.messages(OWNER) if not m.thread_ts]
        assert len(msg.versions) == edits, "a number that only moved re-edited the group's message"
