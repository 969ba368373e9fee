"""Fail points: off unless VIGIL_FAILPOINTS names them; a typo is an error, not a silent pass."""
from __future__ import annotations

import pytest

from monitor import failpoints
from monitor.failpoints import ENV, POINTS, FailPointError, failpoint, parse


def test_nothing_happens_without_the_variable(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    for name in POINTS:
        failpoint(name)


def test_raise_on_the_nth_time_only(monkeypatch):
    failpoints.reset()
    monkeypatch.setenv(ENV, "after_apply_commit=raise@2")
    failpoint("after_apply_commit")
    with pytest.raises(FailPointError):
        failpoint("after_apply_commit")
    failpoint("after_apply_commit")


@pytest.mark.parametrize("spec", ["after_alais_move=kill", "after_alias_move=explode", "after_alias_move=kill@x",
                                  "after_alias_move"])
def test_a_misspelled_spec_is_an_error(spec):
    with pytest.raises(ValueError, match=ENV):
        parse(spec)


def test_every_named_point_is_reached_somewhere_in_the_product():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[3] / "monitor"
    text = "".join(p.read_text() for p in root.rglob("*.py") if p.name != "failpoints.py")
    assert [n for n in POINTS if f'"{n}"' not in text] == []
