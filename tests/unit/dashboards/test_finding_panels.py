"""The panel of a model dashboard that shows each kind of finding: the one the builder
made for it, found by id in the built dashboard (what `viewPanel=<id>` opens)."""
from __future__ import annotations

from typing import Any

import pytest

from dashboards.builder import _walk
from dashboards.finding_panels import DRIFT_KINDS, finding_panel
from dashboards.model_dashboard import ModelDashboard, build_model_dashboard, build_model_dashboard_keyed
from detectors.records import FindingKind
from tests.unit.dashboards.test_dashboards_build import model, sample_spec


@pytest.fixture(scope="module")
def built() -> ModelDashboard:
    spec = sample_spec()
    return build_model_dashboard_keyed(spec.datasources, model(spec, "recommender"))


def title_of(built: ModelDashboard, panel_id: int | None) -> str:
    assert panel_id is not None
    (panel,) = [p for p in _walk(built.model["panels"]) if p["id"] == panel_id]
    return str(panel["title"])


def test_the_keyed_build_is_the_dashboard_provisioned() -> None:
    spec = sample_spec()
    m = model(spec, "recommender")
    assert build_model_dashboard_keyed(spec.datasources, m).model == build_model_dashboard(spec.datasources, m)


def test_kpi_drop_opens_that_kpis_panel(built: ModelDashboard) -> None:
    assert title_of(built, finding_panel(built.finding_panels, "kpi_drop", "ctr", "kpi_change_pct")) == "KPI: ctr"


def test_slo_breach_opens_that_slos_panel(built: ModelDashboard) -> None:
    for slo in ("p99_latency", "error_ratio"):
        assert title_of(built, finding_panel(built.finding_panels, "slo_breach", slo, "p99_latency_s")) \
            == f"SLO: {slo}"


def test_drift_opens_the_panel_of_its_statistic_else_the_configured_one(built: ModelDashboard) -> None:
    # The sample has a categorical feature and psi (which has a categorical form): one drift panel.
    for kind in DRIFT_KINDS:
        assert title_of(built, finding_panel(built.finding_panels, kind, "user_age", "psi")) == "Feature drift (psi)"
        assert title_of(built, finding_panel(built.finding_panels, kind, "score", "")) == "Feature drift (psi)"


def test_drift_with_a_fallback_statistic_opens_that_statistics_panel() -> None:
    spec = sample_spec(policy={"drift_statistic": "ks"})  # categorical features fall back to another statistic
    m = model(spec, "recommender")
    built = build_model_dashboard_keyed(spec.datasources, m)
    assert len(m.policy.drift_statistics) == 2
    fallback = m.policy.drift_statistics[1]
    assert title_of(built, finding_panel(built.finding_panels, "feature_drift", "device", fallback)) \
        == f"Feature drift ({fallback})"
    assert title_of(built, finding_panel(built.finding_panels, "feature_drift", "user_age", "ks")) \
        == "Feature drift (ks)"
    assert title_of(built, finding_panel(built.finding_panels, "feature_drift", "x", "wasserstein")) \
        == "Feature drift (ks)"  # no panel of its own: the configured statistic's


def test_gpu_saturation_opens_the_gpu_utilisation_panel(built: ModelDashboard) -> None:
    assert title_of(built, finding_panel(built.finding_panels, "gpu_saturation", "recsys-api-0/gpu0", "util")) \
        == "GPU utilisation (DCGM)"


def test_a_root_cause_metric_finding_opens_its_metrics_panel(built: ModelDashboard) -> None:
    """The detector's entity is "<service>: <metric>": a model's own service opens that
    metric's panel; a service only the series named, the first root-cause panel."""
    assert title_of(built, finding_panel(built.finding_panels, "metric_anomaly", "recsys-api: goodput", "robust_z")) \
        == "Root cause: goodput"
    assert title_of(built, finding_panel(built.finding_panels, "metric_anomaly", "recsys-db: goodput", "robust_z")) \
        == "Root cause: http_errors"
    # The KPI anomaly detector's findings (another statistic) are not taken for root-cause ones.
    assert finding_panel(built.finding_panels, "metric_anomaly", "ctr", "value_vs_expected") is None


@pytest.mark.parametrize("kind, entity", [("log_anomaly", "recsys-api"), ("kpi_drop", "unknown_kpi"),
                                          ("slo_breach", "unknown_slo"), ("no_data", "")])
def test_anything_else_has_no_panel(built: ModelDashboard, kind: str, entity: str) -> None:
    assert finding_panel(built.finding_panels, kind, entity, "") is None


def test_a_model_without_gpu_or_drift_has_no_panel_for_them() -> None:
    spec = sample_spec()
    built = build_model_dashboard_keyed(spec.datasources, model(spec, "fraud.scorer"))
    assert finding_panel(built.finding_panels, "gpu_saturation", "g", "") is None
    assert title_of(built, finding_panel(built.finding_panels, "kpi_drop", "chargebacks")) == "KPI: chargebacks"


def test_the_keys_are_the_kinds_detectors_emit(built: ModelDashboard) -> None:
    kinds: set[Any] = {k.kind for k in built.finding_panels}
    assert kinds == {"kpi_drop", "slo_breach", "gpu_saturation", "metric_anomaly", *DRIFT_KINDS}
    assert kinds <= {str(k) for k in FindingKind}
