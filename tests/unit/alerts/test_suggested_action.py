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


def test_a_release_after_vigils_rollback_whose_own_rollback_is_refused_says_so_and_how_to_roll_back():
    """v2 rolled back to v1 by Vigil; a person released v3, now the top cause, and its rollback
    was refused by the 6 h cool-down. The message said "Confirm the KPIs recover with v3"."""
    actions = [{**_done("rollback", "2", "1", "vigil"), "at": 100.0},
               {"kind": "rollback", "from_version": None, "to_version": "1", "status": "refused", "at": 3400.0,
                "reason": "cool-down: last rollback 55 min ago < 360 min", "detail": "guard: cooldown",
                "actor": "vigil"}]
    v3 = [{"kind": "deploy", "entity": "recommender v3", "evidence": {"version": "3", "previous_version": "1"}}]
    text = suggested_action(v3, actions, "open", "recommender", serving="3")
    assert "recover with v3" not in text, text
    assert "v3" in text and "refused" in text and "cool-down: last rollback 55 min ago" in text, text
    assert "POST /v1/models/recommender/rollback" in text, text
    # A refusal from before Vigil's move is not v3's: the move since is told as before.
    early = [{**actions[1], "at": 50.0}, actions[0]]
    assert "recover with v3" in suggested_action(v3, early, "open", "recommender", serving="3")


def test_a_deploy_vigil_first_saw_serving_tells_how_to_roll_back_without_a_known_previous_version():
    """Vigil's first read of an alias has no previous version (it was not watching before): the
    message said "Compare the new version with the previous one", while POST .../rollback
    without to_version answered "no version known good to roll back to; give to_version"."""
    cause = {"kind": "deploy", "entity": "recommender v2",
             "evidence": {"version": "2", "previous_version": None, "alias": "champion"}}
    text = suggested_action([cause], [], "open", "recommender")
    assert "to_version" in text and "/v1/models/recommender/rollback" in text, text
    assert "v2" in text and "'champion'" in text, text
    known = {**cause, "evidence": {**cause["evidence"], "previous_version": "1"}}
    assert suggested_action([known], [], "open", "recommender").startswith("Roll back to v1 ")
