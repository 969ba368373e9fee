"""A Slack send kept going past the sender's outbox claim: its budget (240 s) ran from the
notifier's first call, not from the claim, so a sender paused after claiming (up to the claim's
300 s still passes its own check) could retry a rate-limited post in place after the claim had
run out. The replica that took the row over looked for the message, did not find it yet, and
posted it: two top-level messages for one incident. The send now ends with the claim."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from alerts.outbox import MessageKind
from alerts.slack import SlackNotifier
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.fakes.slack_server import FakeSlack
from tests.unit.alerts.test_sink import incident_payload

TOKEN = "xoxb-claim-5c1d"
CLAIM_S = 2.0  # what a pause after the claim left of it
RETRY_AFTER_S = 3  # Slack's 429 on the post: short enough to be slept in place, longer than the claim left


def test_a_rate_limited_post_is_not_retried_in_place_past_the_claim(tmp_path: Path) -> None:
    stores = [Store(f"sqlite:///{tmp_path / 'vigil.db'}") for _ in range(2)]
    with FakeSlack(token=TOKEN, channels=("recsys-alerts",), post_rate_per_s=100, post_burst=100) as slack:
        with stores[0].tx() as s:
            stores[0].enqueue(s, "slack", MessageKind.INCIDENT, "incident:3:#recsys-alerts", incident_payload(),
                              time.time())
        first, other = (OutboxSender(st, {"slack": SlackNotifier(TOKEN, base_url=slack.base_url, timeout_s=5.0,
                                                                 max_rate_limit_retries=1)},
                                     VigilMetrics(), claim_s=CLAIM_S) for st in stores)
        slack.force(429, method="chat.postMessage", retry_after=RETRY_AFTER_S)
        thread = threading.Thread(target=first.deliver_due, args=(time.time(),))
        thread.start()
        time.sleep(CLAIM_S + 0.3)
        other.deliver_due(time.time())  # the claim has run out: the row is the other replica's
        thread.join(timeout=30)
        deadline = time.monotonic() + 20
        while stores[1].outbox_counts() != {"delivered": 1} and time.monotonic() < deadline:
            other.deliver_due(time.time())  # whatever is left goes out
            time.sleep(0.2)
        posted = [m for m in slack.messages() if not m.thread_ts]
    assert stores[1].outbox_counts() == {"delivered": 1}
    assert len(posted) == 1, f"top-level messages for one incident: {len(posted)}"
    for st in stores:
        st.close()
