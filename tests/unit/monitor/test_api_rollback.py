"""Rollback details the end-to-end tests in test_api.py do not reach."""
from __future__ import annotations

import time

from tests.unit.monitor.test_api import ROLLBACK, build


def test_a_rollback_stands_when_announcing_it_fails(tmp_path, monkeypatch, caplog):
    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)

    def outbox_down() -> int:
        raise ConnectionError("slack unreachable")

    monkeypatch.setattr(api.vigil, "deliver", outbox_down)
    r = api.post(ROLLBACK, {"reason": "CTR -10% since v2"})
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert api.alias() == "1"
    assert "outbox delivery after rollback failed" in caplog.text
