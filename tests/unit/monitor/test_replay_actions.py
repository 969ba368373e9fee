"""`vigil replay --config FILE --from T --to T` runs the production cycle over history against
the configured sources, which are the production MLflow registry and serving: the README
promises a replay pages no one, and it must move nothing either. Rollbacks and canary
pulls it decides are recorded as dry runs; the registry is only read."""
from __future__ import annotations

import json

from monitor.replay.loop import ReplayOptions, ReplaySpan, replay
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, serving_registry


def test_a_replay_over_the_configured_registry_rolls_back_nothing(tmp_path):
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
    registry = serving_registry()

    def deploy_v2(t: float) -> None:  # someone deploys v2 while the replay runs: the poll sees a move
        if t >= T0 - 900:
            registry.aliases[(MODEL, "champion")] = "2"

    out = tmp_path / "out" / "incidents.jsonl"
    # The options `vigil replay --config` gives, with the configured sources' stand-ins.
    options = ReplayOptions(out_path=out, progress=False, before_cycle=deploy_v2, registry=registry,
                            prometheus=incident_prometheus(bad_from=T0 - 300))
    result = replay(cfg, ReplaySpan(T0 - 1200, T0 + 300, 300.0), options)

    assert registry.moves == []  # production's alias stays where it is
    assert registry.aliases[(MODEL, "champion")] == "2"
    (incident,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert incident["severity"] == "critical"
    # What Vigil would have done is still shown, as a dry run.
    assert [(a["status"], a["from_version"], a["to_version"]) for a in incident["actions"]] == [("dry_run", "2", "1")]
    assert any("rollback dry_run" in line for _, line in result.timeline)
