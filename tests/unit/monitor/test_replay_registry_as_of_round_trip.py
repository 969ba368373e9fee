"""`vigil replay --config` before a rollback that was later rolled forward: Vigil moved the
alias v2 -> v1 (its record on v1) and then, forced, v1 -> v2 (its record on v2 overwrites
v2's tags). Before the first move the alias served v2, as v1's record says."""
from __future__ import annotations

from monitor.replay.loop import ReplayOptions, ReplaySpan, replay
from monitor.sources.registry import alias_tag, format_timestamp
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, model_config, serving_registry

BACK_AT, FORWARD_AT = T0 + 3600, T0 + 7200  # rolled back v2 -> v1 at 09:00, forward to v2 at 10:00


def _record(set_at: float, previous: str) -> dict[str, str]:
    return {alias_tag("champion", "set_at"): format_timestamp(set_at),
            alias_tag("champion", "previous"): previous, alias_tag("champion", "set_by"): "vigil"}


def test_before_a_rollback_rolled_forward_since_the_alias_served_what_it_was_rolled_back_from(tmp_path):
    registry = serving_registry(version="2", versions=())
    registry.add_version(MODEL, "1", created_at=T0 - 30 * 86400, tags=_record(BACK_AT, "2"))
    registry.add_version(MODEL, "2", created_at=T0 - 20 * 86400, tags=_record(FORWARD_AT, "1"))
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2},
                      models=[model_config()])
    out = tmp_path / "out" / "incidents.jsonl"
    options = ReplayOptions(out_path=out, progress=False, registry=registry,
                            prometheus=incident_prometheus(bad_from=T0 + 600))
    result = replay(cfg, ReplaySpan(T0, T0 + 5400, 300.0), options)  # 08:00-09:30: the rollback at 09:00

    moves = [line for _, line in result.timeline if "now serves" in line or "rolled back to" in line]
    assert len(moves) == 1 and "v1" in moves[0] and "v2" in moves[0], result.timeline
