"""The alias is moved by a person between the cycle's registry poll and its rollback (the
sweep reads every alias first; a revert lands a few seconds later). The runner refuses on
its fresh read; the next cycle sees the move in its poll: one refusal and one audit entry
in all, not one per reading."""
from __future__ import annotations

from tests.helpers_vigil import MODEL, T0
from tests.integration.test_rollback_safety import _run, _serve, _vigil


def test_a_move_after_the_poll_is_refused_once(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2", "3"))
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)
    # find the first cycle in which Vigil would roll back, and land the person's move right after its poll
    poll = v.deploys.poll
    moved = {"done": False}

    def poll_then_person_moves(m, t, **kw):
        out = poll(m, t, **kw)
        if t >= T0 - 120 and not moved["done"]:
            moved["done"] = True
            reg.aliases[(MODEL, "champion")] = "3"
        return out

    monkeypatch.setattr(v.deploys, "poll", poll_then_person_moves)
    _run(v, T0 - 1200, T0 + 300)
    assert reg.moves == []
    refused = [(a.reason, a.detail) for a in v.store.actions(model=MODEL)
               if a.status == "refused" and "moved it since" in (a.reason + a.detail)]
    audit = [e.action for e in v.store.audit_entries()].count("rollback.refused")
    all_refused = [a for a in v.store.actions(model=MODEL) if a.status == "refused"]
    assert len(refused) == 1 and audit == len(all_refused), (refused, audit)  # one audit entry per refusal
