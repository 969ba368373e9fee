"""A `stay` ask (the blamed version asked for while it serves) when the alias reads once and
then cannot be read: nothing is known to serve another version, so it must not be refused as
"serve v2, not v2: needs force", but fail as an unreadable alias does, nothing moved."""
from __future__ import annotations

from monitor.cycle.rollback_intents import RollbackAsk
from monitor.sources.errors import SourceUnavailable
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry


def test_a_stay_ask_whose_layers_cannot_be_read_fails_saying_so_and_moves_nothing(tmp_path):
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    m = vigil.config.model(MODEL)
    reads = {"n": 0}
    read = reg.alias_version

    def flaky(name: str, alias: str) -> str | None:
        reads["n"] += 1
        if reads["n"] > 1:  # the alias answered once, then the registry went away
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "connection refused")
        return read(name, alias)

    reg.alias_version = flaky
    out = vigil.operator.rollback(RollbackAsk(m, "2", "make sure v2 serves", "api:test", None, T0, stay=True))
    assert out.status == "failed" and "cannot be read" in out.detail, out
    assert "not v2" not in out.detail, out.detail
    assert reg.moves == [] and reg.aliases[(MODEL, "champion")] == "2"
