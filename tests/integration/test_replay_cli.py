"""`vigil replay --config FILE --from T --to T --step S --out FILE` against sources that are
already running (here: a real Prometheus and a SQLite MLflow registry)."""
from __future__ import annotations

import json

import pytest
import yaml

from monitor.cli import main
from monitor.replay.demo import TIMES, generate_bundle
from monitor.replay.local_mlflow import sqlite_tracking_uri
from monitor.replay.local_prometheus import LocalPrometheus
from monitor.replay.registry_bundle import RegistryTimeline, read_registry_jsonl

pytestmark = pytest.mark.integration


def iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_replay_over_configured_sources_finds_the_gpu_incident(tmp_path, capsys):
    from monitor.config import MlflowConfig
    from monitor.sources.registry import RegistrySource

    bundle = generate_bundle(tmp_path / "bundle")
    db = tmp_path / "mlflow.db"
    with RegistrySource(MlflowConfig(tracking_uri=sqlite_tracking_uri(db))) as registry:
        RegistryTimeline(read_registry_jsonl(bundle / "registry.jsonl"), registry).apply_until(TIMES.replay_end)
    with LocalPrometheus(bundle / "metrics.om", tmp_path / "prom") as prom:
        url = prom.start()
        cfg = yaml.safe_load((bundle / "vigil.yaml").read_text())
        cfg["sources"] = {"prometheus": {"url": url, "step": "60s"},
                          "mlflow": {"tracking_uri": sqlite_tracking_uri(db)}}
        cfg["models"][0]["samples"]["path"] = str(bundle / "samples")
        cfg["models"][0]["reference"] = {"path": str(bundle / "reference" / "train_v1.parquet")}
        (tmp_path / "vigil.yaml").write_text(yaml.safe_dump(cfg))
        out = tmp_path / "out" / "incidents.jsonl"
        rc = main(["--log-level", "WARNING", "replay", "--config", str(tmp_path / "vigil.yaml"),
                   "--from", iso(TIMES.surge_start - 1800), "--to", iso(TIMES.surge_end + 1800), "--step", "2m",
                   "--out", str(out), "--quiet"])
    assert rc == 0
    incidents = [json.loads(line) for line in out.read_text().splitlines()]
    (gpu,) = [i for i in incidents if i["model"] == "recommender" and i["causes"]
              and i["causes"][0]["kind"] == "gpu_saturation"]
    assert gpu["severity"] == "critical" and gpu["actions"] == []
    assert TIMES.surge_start <= gpu["opened_at"] <= TIMES.surge_start + 600
    printed = capsys.readouterr().out
    assert "Timeline (" in printed and "OPEN CRITICAL" in printed


def test_replay_rejects_a_reversed_range(tmp_path, capsys):
    (tmp_path / "vigil.yaml").write_text("models:\n  - name: m\n")
    assert main(["replay", "--config", str(tmp_path / "vigil.yaml"), "--from", "2026-11-20T10:00:00Z",
                 "--to", "2026-11-20T09:00:00Z", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--to" in capsys.readouterr().err
    assert main(["replay", "--bundle", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "missing vigil.yaml" in capsys.readouterr().err
