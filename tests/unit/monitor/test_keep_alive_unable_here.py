"""A replica that cannot read a receiver's secret leaves its messages to a replica that can
(`_unable_here`), but still ran its keep-alive and settle rounds: every round a post that
could not be sent and a warning. They are left to that replica too."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from alerts.receivers.http import SecretSource
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store


class KeepingAlive:
    name = "am"

    def __init__(self, token: SecretSource) -> None:
        self.bearer_token, self.asked = token, 0

    def deliver(self, message: Any) -> Any:
        raise AssertionError("nothing is queued")

    def keep_alive_due(self) -> bool:
        self.asked += 1
        return True

    def keep_alive(self, refs: Mapping[str, dict[str, Any]]) -> int:
        return 0

    def unsettled(self) -> bool:
        self.asked += 1
        return True

    def settle(self, refs: Mapping[str, dict[str, Any]]) -> int:
        return 0


def test_keep_alive_is_left_to_a_replica_that_can_read_the_token(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_TEST_AM_TOKEN", raising=False)
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    unable = KeepingAlive(SecretSource("the Alertmanager bearer token", env="VIGIL_TEST_AM_TOKEN"))
    sender = OutboxSender(store, {"am": unable}, VigilMetrics())  # type: ignore[dict-item]
    sender.deliver_due(1000.0)
    assert unable.asked == 0
    monkeypatch.setenv("VIGIL_TEST_AM_TOKEN", "t")  # readable here now: this replica keeps them alive
    sender.deliver_due(1010.0)
    assert unable.asked == 2
