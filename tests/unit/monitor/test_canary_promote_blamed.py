"""Auto-promotion read no blame: a challenger an incident blames (its canary failed and the
incident is still open or recent, or a rollback moved the champion away from it) that then
passed `promote_after_cycles` cycles was moved onto the champion alias on its own, the
version people had just been paged about. Promoting it by hand needs force and a reason
(the rollback API), and auto-promotion now refuses it as well: the run stays `running`, the
champion is untouched, and the refusal is said once (an audit entry)."""
from __future__ import annotations

from alerts.rollback import ActionStatus
from monitor.sources.promql_text import with_matcher
from monitor.store.canary import runs
from monitor.store.intents import add_intent
from tests.helpers_vigil import MODEL, P99_QUERY, T0
from tests.unit.monitor.test_canary_cycle import build, prometheus, wiggle


def _promotions(vigil) -> list:
    return [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_promote"]


def test_a_challenger_whose_canary_failed_in_an_open_incident_is_not_auto_promoted(tmp_path) -> None:
    prom = prometheus(p99_challenger=0.16)
    vigil, registry = build(tmp_path, prom, promote_after_cycles=2, auto_promote=True, pull=False)
    first = vigil.run_cycle(MODEL, T0)
    assert first.canary is not None and str(first.canary.overall) == "fail" and first.incident_id is not None
    prom.curves[with_matcher(P99_QUERY, "model_version", "2")] = wiggle(0.1, 5.0)  # it now looks as good
    reports = [vigil.run_cycle(MODEL, T0 + 60 * k) for k in (1, 2, 3)]
    assert [str(r.canary.overall) for r in reports if r.canary] == ["pass"] * 3
    assert registry.aliases[(MODEL, "champion")] == "1", registry.moves
    assert _promotions(vigil) == []
    entries = [e for e in vigil.store.audit_entries() if e.action == "canary.promotion_refused"]
    assert len(entries) == 1 and "incident" in str(entries[0].detail), entries


def test_a_challenger_a_rollback_moved_away_from_is_not_auto_promoted(tmp_path) -> None:
    vigil, registry = build(tmp_path, prometheus(), promote_after_cycles=2, auto_promote=True)
    with vigil.store.tx() as s:  # an hour ago the champion was rolled back from v2 to v1
        action = vigil.store.add_action(s, model=MODEL, kind="rollback", incident_id=None, from_version="2",
                                        to_version="1", status=ActionStatus.DONE, reason="CTR down since v2",
                                        detail="", actor="vigil", dry_run=False, at=T0 - 3600)
        intent = add_intent(s, model=MODEL, incident_id=None, action_id=action.id, from_version="2",
                            to_version="1", executors=["mlflow"], fencing_token=None, actor="vigil",
                            reason="CTR down since v2", forced=False, max_attempts=1, next_attempt_at=T0 - 3600,
                            created_at=T0 - 3600, updated_at=T0 - 3600)
        intent.status = ActionStatus.DONE
    for k in range(3):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    assert registry.aliases[(MODEL, "champion")] == "1", registry.moves
    assert _promotions(vigil) == []
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "running"


def test_a_blamed_challenger_is_not_suggested_for_promotion_either(tmp_path) -> None:
    """The suggestion says "promote with POST .../rollback {to_version} or set auto_promote":
    both would be refused for a blamed version (the API asks for force and a reason)."""
    prom = prometheus(p99_challenger=0.16)
    vigil, registry = build(tmp_path, prom, promote_after_cycles=2, pull=False)
    vigil.run_cycle(MODEL, T0)  # fails: the incident blames v2
    prom.curves[with_matcher(P99_QUERY, "model_version", "2")] = wiggle(0.1, 5.0)
    for k in (1, 2, 3):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    actions = [e.action for e in vigil.store.audit_entries()]
    assert "canary.promotion_suggested" not in actions
    assert actions.count("canary.promotion_refused") == 1


def test_once_the_blame_is_over_a_suggested_run_no_longer_says_it_is_not_promoted(tmp_path) -> None:
    """A suggested challenger later blamed (a rollback moved away from it) read "not promoted
    on its own: v2 is blamed (...)"; once the blame window was over it still did, for good,
    while it was again a suggested promotion (a suggestion is made once)."""
    vigil, registry = build(tmp_path, prometheus(), promote_after_cycles=2)
    for k in range(2):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    at = T0 + 90
    with vigil.store.tx() as s:  # the champion was rolled back from v2 to v1 (say, after a hand promotion)
        action = vigil.store.add_action(s, model=MODEL, kind="rollback", incident_id=None, from_version="2",
                                        to_version="1", status=ActionStatus.DONE, reason="CTR down since v2",
                                        detail="", actor="vigil", dry_run=False, at=at)
        intent = add_intent(s, model=MODEL, incident_id=None, action_id=action.id, from_version="2",
                            to_version="1", executors=["mlflow"], fencing_token=None, actor="vigil",
                            reason="CTR down since v2", forced=False, max_attempts=1, next_attempt_at=at,
                            created_at=at, updated_at=at)
        intent.status = ActionStatus.DONE
    vigil.run_cycle(MODEL, T0 + 120)
    with vigil.store.tx() as s:
        assert "not promoted on its own" in runs(s, MODEL)[0].detail
    later = at + 7 * 86400 + 60  # past the blame window
    vigil.run_cycle(MODEL, later)
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "suggested" and "not promoted" not in run.detail, run.detail
    assert registry.aliases[(MODEL, "champion")] == "1"
