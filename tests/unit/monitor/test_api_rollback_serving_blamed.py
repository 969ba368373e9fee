"""A rollback asked to the version already serving, when that version is blamed: README says
`noop` (nothing to move); the API answered 409 "blamed, needs force"."""
from __future__ import annotations

import time

from tests.unit.monitor.test_api import MODEL, ROLLBACK, build


def _serving_v2_blamed(tmp_path, monkeypatch):
    """v2 rolled back to v1 (so v2 is blamed), then forced back to v2 by an admin."""
    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    assert api.post(ROLLBACK, {"reason": "CTR -10% since v2"}).json()["status"] == "done"
    forced = api.post(ROLLBACK, {"reason": "v1 lacks the fix", "to_version": "2", "force": True})
    assert forced.json()["status"] == "done" and api.alias() == "2"
    return api


def test_asking_for_the_blamed_version_already_serving_is_a_noop_naming_it(tmp_path, monkeypatch):
    api = _serving_v2_blamed(tmp_path, monkeypatch)
    moves = list(api.registry.moves)
    r = api.post(ROLLBACK, {"reason": "make sure v2 serves", "to_version": "2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "noop" and body["to_version"] == "2"
    assert "v2" in body["detail"] and "blamed" in body["detail"], body["detail"]
    assert api.registry.moves == moves and api.alias() == "2"


def test_asked_for_the_blamed_version_it_moves_nothing_when_the_alias_moved_since(tmp_path, monkeypatch):
    """Vigil last saw v2; someone moved the alias to v3 since. The ask was for "nothing to
    move": it must not become a move to a blamed version without force."""
    api = _serving_v2_blamed(tmp_path, monkeypatch)
    api.registry.aliases[(MODEL, "champion")] = "3"  # not yet polled
    moves = list(api.registry.moves)
    r = api.post(ROLLBACK, {"reason": "make sure v2 serves", "to_version": "2"})
    assert r.status_code == 409, r.text
    assert api.registry.moves == moves and api.alias() == "3"


def test_asked_for_the_blamed_version_it_moves_nothing_when_the_alias_cannot_be_read(tmp_path, monkeypatch):
    api = _serving_v2_blamed(tmp_path, monkeypatch)
    moves = list(api.registry.moves)
    api.registry.down = True
    r = api.post(ROLLBACK, {"reason": "make sure v2 serves", "to_version": "2"})
    assert r.status_code in (409, 502), r.text
    api.registry.down = False
    assert api.registry.moves == moves and api.alias() == "2"
