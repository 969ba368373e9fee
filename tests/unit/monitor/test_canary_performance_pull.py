"""A challenger whose own labelled predictions show a critical accuracy drop is pulled, as a
failed KPI pulls it: through the durable intent, the run's detail and the incident naming
the drop. It was only held from promotion, and kept serving its share of the traffic at
-40 % realised accuracy while the run said nothing of why. An estimated drop (CBPE, a
warning) still only holds promotion."""
from __future__ import annotations

from pathlib import Path

import pytest

from correlators.causes import of_version
from detectors.records import Finding, FindingKind
from monitor.cycle.canary_blame import performance_hold
from monitor.cycle.canary_pull import accuracy_pull_cause
from monitor.failpoints import ENV, FailPointError
from monitor.store.canary import runs
from tests.helpers_vigil import MODEL, T0
from tests.unit.monitor.test_canary_performance_hold import _canary_with_labels


def test_a_challenger_with_a_critical_accuracy_drop_is_pulled_naming_the_drop(tmp_path: Path) -> None:
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    report = vigil.run_cycle(MODEL, T0 + 60)
    assert report.canary is not None and report.canary.overall == "pass"  # its KPIs and SLOs alone pass
    assert (MODEL, "challenger") not in registry.aliases, "a challenger at -40 % accuracy kept its traffic"
    assert registry.aliases[(MODEL, "champion")] == "1"
    (action,) = [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]
    assert action.status == "done" and (action.from_version, action.to_version) == ("2", "1")
    assert "its own realised " in action.reason and "version 2" in action.reason
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "pulled" and "its own realised " in run.detail
    incident = vigil.store.incident(report.incident_id)
    assert incident is not None and incident.severity == "critical"
    message = vigil.store.outbox_for_prefix(f"incident:{incident.id}")[-1].payload
    assert message["suggested_action"].startswith("Vigil pulled challenger v2")
    assert "its own realised " in message["suggested_action"]
    assert vigil.store.rollback_times(MODEL) == []  # the champion is not rolled back for it


def test_an_accuracy_pull_finished_after_a_crash_still_names_its_cause(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between the pull's intent and its move: the start-up reconcile finishes it and
    marks the run pulled, but its detail said only what moved, never why (the challenger
    gone, no later cycle writes it)."""
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):
        vigil.run_cycle(MODEL, T0 + 60)  # the intent is recorded, nothing moved yet
    monkeypatch.delenv(ENV)
    vigil.reconcile(T0 + 90)
    assert (MODEL, "challenger") not in registry.aliases
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.status == "pulled" and "its own realised " in run.detail, run.detail


def test_pull_false_only_holds_a_challenger_with_a_critical_accuracy_drop(tmp_path: Path) -> None:
    vigil, registry = _canary_with_labels(tmp_path, 0.55, pull=False)
    vigil.run_cycle(MODEL, T0 + 60)
    assert registry.aliases[(MODEL, "challenger")] == "2"
    assert not [a for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]


def _drop(basis: str, version: str = "2") -> Finding:
    return Finding(kind=FindingKind.PERFORMANCE_DROP, entity="accuracy", model=MODEL, value=-40.0, threshold=-10.0,
                   window_start=T0 - 3600, window_end=T0, onset=T0 - 3600,
                   message=f"{basis} accuracy 0.54 vs 0.9 in the reference (-40.0%, limit -10%), version {version}",
                   evidence={"basis": basis, "version": version})


def test_only_a_realised_drop_of_the_challenger_itself_is_grounds_for_a_pull() -> None:
    assert "realised accuracy 0.54" in accuracy_pull_cause([_drop("realised")], "2", "v2")
    assert accuracy_pull_cause([_drop("estimated")], "2", "v2") == ""  # a warning: it only holds promotion
    assert accuracy_pull_cause([_drop("realised", version="1")], "2", "v2") == ""  # the champion's
    assert "realised" in accuracy_pull_cause([_drop("realised", version="v2")], "2", "v2")


def test_a_drop_on_the_label_the_performance_template_renders_pulls_and_holds_the_challenger() -> None:
    """Only `performance.version_value: "resnet50-v{version}"` set: the drop names
    "resnet50-v3" (the canary's own label value is the default "3"). It pulled nothing."""
    drop = _drop("realised", version="resnet50-v3")
    drop.evidence["version_value"] = "resnet50-v{version}"  # as monitor/cycle/performance.py stamps it
    assert "realised accuracy 0.54" in accuracy_pull_cause([drop], "3", "3")
    assert "own performance dropped" in performance_hold([drop], "3", "3")
    assert accuracy_pull_cause([drop], "30", "30") == ""  # "resnet50-v3" is not v30
    assert performance_hold([drop], "2", "2") == ""


@pytest.mark.parametrize("named", ["v2", "02", "model-2"])
def test_a_drop_on_a_label_holding_the_challengers_one_number_pulls_and_holds_it(named: str) -> None:
    """No version template set, the samples writing v2 as "v2": the correlators read the drop
    as v2's (not the champion's deploy to blame, correlators/causes.py), while the canary
    matched only "2" and its label value, so neither pulled nor held the challenger."""
    drop = _drop("realised", version=named)
    assert of_version([drop], "1") == []  # not the champion's ...
    assert "realised accuracy 0.54" in accuracy_pull_cause([drop], "2", "2")  # ... so the challenger's
    assert "own performance dropped" in performance_hold([drop], "2", "2")
    assert accuracy_pull_cause([_drop("realised", version="1.3.2")], "2", "2") == ""  # names no version
    assert accuracy_pull_cause([_drop("realised", version="v12")], "2", "2") == ""
