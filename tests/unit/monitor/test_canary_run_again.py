"""A challenger's run is kept per version: once it ended (pulled, promoted) it never acted
again. So a failed challenger set on the alias again (by hand, by a pipeline retrying)
took its share of traffic for good, failing every cycle and never pulled; and a promoted
version left on the challenger alias after the champion was rolled back from it was
judged failing against the old champion and never pulled either. A challenger set again
after its pull is a new run; a promoted one judged again is pulled when it fails, and
never promoted again (that would undo the move back from it)."""
from __future__ import annotations

import pytest

from monitor.failpoints import ENV, FailPointError
from monitor.store.canary import run_row, runs
from tests.helpers_vigil import MODEL, T0
from tests.unit.monitor.test_canary_cycle import build, prometheus


def test_a_failed_challenger_set_again_is_pulled_again(tmp_path):
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    vigil.run_cycle(MODEL, T0)
    assert (MODEL, "challenger") not in registry.aliases  # pulled

    registry.aliases[(MODEL, "challenger")] = "2"  # set again, still as slow
    # Judged on what it serves from its pull on, as a first challenger is: pulled once it has
    # min_points (10) 5-minute points of its own, never passed meanwhile.
    for k in range(1, 13):
        report = vigil.run_cycle(MODEL, T0 + 300 * k)
        assert report.canary is not None and report.canary.overall in ("inconclusive", "fail")
        if (MODEL, "challenger") not in registry.aliases:
            break
    assert report.canary.overall == "fail" and k <= 11, k
    assert (MODEL, "challenger") not in registry.aliases, "the failing challenger kept its traffic"
    pulls = [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]
    assert [a.status for a in pulls] == ["done", "done"]
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "pulled"


def test_a_promoted_version_judged_again_after_the_champion_moved_back_is_pulled_when_it_fails(tmp_path):
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    with vigil.store.tx() as s:  # v2 was promoted earlier (its run ended "promoted") ...
        run_row(s, MODEL, "2", T0 - 3600).status = "promoted"
    # ... and the champion is back on v1, the challenger alias still on v2.
    report = vigil.run_cycle(MODEL, T0)
    assert report.canary is not None and report.canary.overall == "fail"
    assert (MODEL, "challenger") not in registry.aliases
    assert registry.aliases[(MODEL, "champion")] == "1"


def test_a_promoted_version_judged_again_is_never_promoted_back_over_the_champion(tmp_path):
    vigil, registry = build(tmp_path, prometheus(), promote_after_cycles=2, auto_promote=True)
    with vigil.store.tx() as s:
        run_row(s, MODEL, "2", T0 - 3600).status = "promoted"
    for k in range(4):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        assert report.canary is not None and report.canary.overall == "pass"
    assert registry.aliases[(MODEL, "champion")] == "1"
    assert [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_promote"] == []


def test_a_promotion_finished_after_a_crash_is_never_made_again_once_the_champion_moved_back(tmp_path, monkeypatch):
    """A crash between the promotion's intent and its move left the run "running": the
    start-up reconcile moved the champion to v2, but only the crashed cycle would have
    marked the run promoted. Once a person moved the champion back to v1 (v2 still on the
    challenger alias), the next pass promoted v2 again, undoing the move back."""
    vigil, registry = build(tmp_path, prometheus(), promote_after_cycles=2, auto_promote=True)
    vigil.run_cycle(MODEL, T0)
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):
        vigil.run_cycle(MODEL, T0 + 60)  # the promotion's intent recorded, nothing moved yet
    monkeypatch.delenv(ENV)
    vigil.reconcile(T0 + 90)  # start-up finishes it
    assert registry.aliases[(MODEL, "champion")] == "2"
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "promoted", run.detail

    registry.aliases[(MODEL, "champion")] = "1"  # a person moves the champion back
    for k in range(2, 5):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        assert report.canary is not None and report.canary.overall == "pass"
    assert registry.aliases[(MODEL, "champion")] == "1", "the promotion was made again over the move back"
    assert [a.status for a in vigil.store.actions(model=MODEL) if a.kind == "canary_promote"] == ["done"]


def test_a_pull_finished_after_a_crash_shows_its_run_pulled(tmp_path, monkeypatch):
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):
        vigil.run_cycle(MODEL, T0)
    monkeypatch.delenv(ENV)
    vigil.reconcile(T0 + 30)
    assert (MODEL, "challenger") not in registry.aliases
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "pulled", run.detail


def test_a_challenger_a_pipeline_sets_again_after_every_pull_is_pulled_at_once_from_its_second_pull(tmp_path):
    """A CD loop re-applying the alias after each pull: judged from each pull on, the bad
    challenger kept its share about 50 minutes of every 51. From its second pull within a
    day its whole window counts again, so each re-set is pulled in the next cycle."""
    vigil, registry = build(tmp_path, prometheus(p99_challenger=0.16))
    t = T0
    vigil.run_cycle(MODEL, t)
    served = []  # 5-minute cycles the re-set challenger kept its share, per re-set
    for _ in range(4):
        registry.aliases[(MODEL, "challenger")] = "2"  # the pipeline puts it back
        cycles = 0
        while (MODEL, "challenger") in registry.aliases and cycles < 13:
            t += 300
            vigil.run_cycle(MODEL, t)
            cycles += 1
        served.append(cycles)
    assert served[0] >= 9, served  # the first re-set: a new canary, judged on its own points
    assert served[1:] == [1, 1, 1], served  # then a loop: pulled in the next cycle each time
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "pulled"
    pulls = [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]
    assert [a.status for a in pulls] == ["done"] * 5
