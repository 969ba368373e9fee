"""`performance.version_value`: how the samples' version column writes a registry version.
A label with several numbers ("resnet50-v2") names no registry version without it (which of
50 and 2 is the registry's?), so an accuracy drop measured on it blamed no deploy and rolled
nothing back; with `resnet50-v{version}` it names v2 exactly."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from correlators.incident import CauseKind
from detectors.records import DeployEvent
from monitor.api.app import create_app
from monitor.config import ConfigError, load_config
from tests.helpers_vigil import T0, make_vigil, serving_registry
from tests.unit.monitor.test_performance_cycle import REF_START, H, _config, _labels, _post, _world


@pytest.mark.parametrize(("perf", "blamed"), [({"version_value": "resnet50-v{version}"}, True), ({}, False)])
def test_a_drop_on_a_label_with_several_numbers_blames_the_deploy_its_template_names(tmp_path: Path, perf: dict,
                                                                                     blamed: bool) -> None:
    """v1 ("resnet50-v1") served until v2 ("resnet50-v2") took the alias just before the last
    hour, whose accuracy fell from 0.9 to 0.6; every label is in."""
    frame = _world(tmp_path)
    frame["model_version"] = ["resnet50-v2" if t >= T0 - H else "resnet50-v1" for t in frame["timestamp"]]
    frame.drop(columns="_truth").to_csv(tmp_path / "samples" / "predictions.csv", index=False)
    vigil = make_vigil(_config(tmp_path, **perf), registry=serving_registry("churn", "2"))
    with vigil.store.tx() as s:
        vigil.store.add_deploy(s, DeployEvent("churn", "champion", "1", None, REF_START - 60, "observed"))
        vigil.store.add_deploy(s, DeployEvent("churn", "champion", "2", "1", T0 - H - 60, "registry"))
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    assert _post(client, _labels(frame, T0 + 30)).status_code == 202

    report = vigil.run_cycle("churn", T0 + 60)
    drop = next(f for f in report.findings if f.kind == "performance_drop" and f.entity == "accuracy")
    assert drop.evidence["version"] == "resnet50-v2" and report.severity == "critical"
    deploys = [c.deploy.version for c in report.incident.causes if c.kind == CauseKind.DEPLOY and c.deploy]
    assert deploys == (["2"] if blamed else [])
    rolled = report.rollback and (report.rollback["from_version"], report.rollback["to_version"])
    assert rolled == (("2", "1") if blamed else None)


def test_a_version_value_without_its_placeholder_is_refused_naming_the_field(tmp_path: Path) -> None:
    f = tmp_path / "vigil.yaml"
    f.write_text(textwrap.dedent("""
        models:
          - name: m
            performance:
              task: classification
              reference: {path: ref.parquet}
              version_value: "resnet50-v2"
    """).lstrip())
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "vigil.yaml:6: models[0](m).performance.version_value: must contain {version}" in str(e.value)
