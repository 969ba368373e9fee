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


def test_a_refused_stay_request_is_recorded_and_audited_like_the_other_refusals(tmp_path, monkeypatch):
    """The 409 above was answered and nothing else: no action, no audit entry, while a request
    refused because the alias moved since the ask began is both. An SRE reading the audit log
    must see every refused request."""
    api = _serving_v2_blamed(tmp_path, monkeypatch)
    api.registry.aliases[(MODEL, "champion")] = "3"  # not yet polled
    seq = max(e.seq for e in api.vigil.store.audit_entries())
    r = api.post(ROLLBACK, {"reason": "make sure v2 serves", "to_version": "2"})
    assert r.status_code == 409, r.text
    last = api.vigil.store.actions(model=MODEL)[-1]
    assert (last.status, last.from_version, last.to_version, last.actor) == ("refused", "3", "2", "api:admin"), \
        (last.status, last.from_version, last.to_version, last.actor)
    assert last.detail == r.json()["error"] or last.detail in r.json()["error"], (last.detail, r.json())
    new = [(e.action, e.actor, e.detail.get("from_version"), e.detail.get("to_version"))
           for e in api.vigil.store.audit_entries() if e.seq > seq]
    assert new == [("rollback.requested", "api:admin", "3", "2"), ("rollback.refused", "api:admin", "3", "2")], new


def test_a_stay_request_whose_alias_cannot_be_read_is_recorded_and_audited_with_its_detail(tmp_path, monkeypatch):
    """The 502 was answered and nothing else: no action, no audit entry, unlike every other
    request that moves nothing. Refusals and failures carry their detail in the audit log, so
    the log alone says why nothing moved."""
    api = _serving_v2_blamed(tmp_path, monkeypatch)
    seq = max(e.seq for e in api.vigil.store.audit_entries())
    api.registry.down = True
    r = api.post(ROLLBACK, {"reason": "make sure v2 serves", "to_version": "2"})
    api.registry.down = False
    assert r.status_code == 502, r.text
    last = api.vigil.store.actions(model=MODEL)[-1]
    assert (last.status, last.to_version, last.actor) == ("failed", "2", "api:admin"), (last.status, last.detail)
    assert "cannot be read" in last.detail and "nothing was moved" in last.detail, last.detail
    new = [(e.action, e.detail.get("detail")) for e in api.vigil.store.audit_entries() if e.seq > seq]
    assert [a for a, _ in new] == ["rollback.requested", "rollback.failed"], new
    assert new[1][1] == last.detail, new


def test_a_refused_stay_request_audits_why(tmp_path, monkeypatch):
    api = _serving_v2_blamed(tmp_path, monkeypatch)
    api.registry.aliases[(MODEL, "champion")] = "3"  # not yet polled
    seq = max(e.seq for e in api.vigil.store.audit_entries())
    assert api.post(ROLLBACK, {"reason": "make sure v2 serves", "to_version": "2"}).status_code == 409
    refused = [e for e in api.vigil.store.audit_entries() if e.seq > seq and e.action == "rollback.refused"]
    assert len(refused) == 1 and refused[0].detail.get("detail") == api.vigil.store.actions(model=MODEL)[-1].detail
