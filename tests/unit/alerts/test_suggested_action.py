"""The incident message's suggested action follows the model's last move, by whoever made it."""
from __future__ import annotations

from alerts.payload import suggested_action


def _done(kind: str, frm: str, to: str, actor: str) -> dict[str, str]:
    return {"kind": kind, "from_version": frm, "to_version": to, "status": "done", "actor": actor}


def test_a_later_move_to_a_new_version_replaces_the_rollback_in_the_advice():
    """v2 was rolled back to v1, then an operator moved the alias on to v3 through the API:
    the message kept telling on-call "Vigil rolled back to v1 ... investigate v2", while v3
    served. It now says what serves since the last move and who made it."""
    actions = [_done("rollback", "2", "1", "vigil"), _done("promotion", "1", "3", "api:alice")]
    text = suggested_action([], actions, "open", "recommender")
    assert "v3" in text and "rolled back to v1" not in text, text
    assert "api:alice" in text, text


def test_a_rollback_by_a_person_is_not_told_as_vigil_s_own():
    text = suggested_action([], [_done("rollback", "2", "1", "api:alice")], "open", "recommender")
    assert text.startswith("api:alice rolled back to v1."), text
    assert suggested_action([], [_done("rollback", "2", "1", "vigil")], "open").startswith("Vigil rolled back to v1.")



def test_a_rollback_forward_to_a_newer_version_does_not_blame_the_one_it_left():
    """v2 was rolled back to v1, then an admin forced the alias back to v2 (v1 lacked a fix):
    the message said "rolled back to v2 ... investigate v1 offline", sending on-call after
    the version nobody suspects. A move to a newer version is told as one, judged on v2."""
    actions = [_done("rollback", "2", "1", "vigil"), _done("rollback", "1", "2", "api:admin")]
    text = suggested_action([], actions, "open", "recommender", serving="2")
    assert "investigate v1" not in text and "v1 offline" not in text, text
    assert "api:admin" in text and "v2" in text and "recover with v2" in text, text
    # The usual direction is told as before: back to the older one, investigate the newer.
    back = suggested_action([], actions[:1], "open", "recommender", serving="1")
    assert back == "Vigil rolled back to v1. Confirm the KPIs recover, then investigate v2 offline before redeploying."
    # Versions compare as numbers, as MLflow's do: v10 is newer than v9.
    ten = suggested_action([], [_done("rollback", "10", "9", "vigil")], "open", "recommender", serving="9")
    assert "investigate v10 offline" in ten, ten
