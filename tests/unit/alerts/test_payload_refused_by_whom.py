"""The advice read "Vigil's rollback of it was refused" for any refused rollback since the
alias moved, a person's refused `stay` or moved ask included (recorded since those asks are):
on-call was told Vigil's guard held the blamed version back when Vigil had not been asked."""
from __future__ import annotations

from alerts.payload import suggested_action
from alerts.rollback import ActionStatus

CAUSES = [{"kind": "deploy", "entity": "m", "evidence": {"version": "3"}}]
DONE = {"kind": "rollback", "status": ActionStatus.DONE, "actor": "vigil", "from_version": "2", "to_version": "1",
        "at": 100.0}


def _refused(actor: str, reason: str) -> dict[str, object]:
    return {"kind": "rollback", "status": ActionStatus.REFUSED, "actor": actor, "from_version": "3",
            "to_version": "1", "reason": reason, "detail": "guard: moved", "at": 200.0}


def test_a_persons_refused_ask_is_not_told_as_vigils_refused_rollback() -> None:
    text = suggested_action(CAUSES, [DONE, _refused("api:alice", "stay on v2")], "open", "m", serving="3")
    assert "refused" not in text and "Vigil's rollback" not in text, text
    assert "serves v3 now" in text


def test_vigils_own_refusal_is_still_told() -> None:
    text = suggested_action(CAUSES, [DONE, _refused("vigil", "cool-down: 50 min since the last")], "open", "m",
                            serving="3")
    assert "Vigil's rollback of it was refused (cool-down" in text, text
