"""`models[].canary` in vigil.yaml: defaults, and mistakes named with their line."""
from __future__ import annotations

import textwrap

import pytest

from monitor.config import ConfigError, load_config, parse_config

SLO = {"name": "error_rate", "query": "sum(rate(errors_total[5m])) / sum(rate(requests_total[5m]))",
       "threshold": 0.01}


def test_a_model_without_canary_is_unchanged_and_defaults_are_kayenta_like():
    cfg = parse_config({"models": [{"name": "m"}, {"name": "c", "slos": [SLO], "canary": {}}]})
    assert cfg.model("m").canary is None
    c = cfg.model("c").canary
    assert c is not None
    assert (c.alias, c.version_label, c.alpha, c.fail_effect, c.window, c.pull, c.auto_promote) == (
        "challenger", "model_version", 0.05, 0.1, 3600.0, True, False)
    assert c.label_value("7") == "7"


def test_canary_mistakes_point_at_the_line_and_say_what_was_expected(tmp_path):
    f = tmp_path / "vigil.yaml"
    f.write_text(textwrap.dedent("""
        models:
          - name: m
            alias: champion
            slos:
              - {name: error_rate, query: "sum(rate(e[5m]))", threshold: 0.01}
            canary:
              alias: champion
              version_value: "v"
              metrics:
                latency: {fail_above: 1}
    """).lstrip())
    with pytest.raises(ConfigError) as e:
        load_config(f)
    text = str(e.value)
    assert "vigil.yaml:8: models[0](m).canary.version_value: must contain {version}" in text


@pytest.mark.parametrize(("canary", "message"), [
    ({"metrics": {"latency": {"fail_above": 1}}}, "canary.metrics names latency: expected the name of one of"),
    ({"alias": "champion"}, "is the model's own alias"),
    ({"marginal_effect": 0.3, "fail_effect": 0.1}, "marginal_effect (0.3) must be <= fail_effect (0.1)"),
    ({"version_label": "model-version"}, "version_label"),
])
def test_bad_canary_settings_are_refused(canary, message):
    with pytest.raises(ConfigError) as e:
        parse_config({"models": [{"name": "m", "alias": "champion", "slos": [SLO], "canary": canary}]})
    assert message in str(e.value)


def test_an_override_naming_both_a_kpi_and_an_slo_is_refused_not_applied_to_both():
    # An SLO's absolute rule (an error rate above 5 %) would also judge the KPI of that name
    # (a rate of 0.2 is fine there) and pull a good challenger.
    kpi = {"name": "error_rate", "query": "sum(rate(bad_predictions_total[5m])) / sum(rate(predictions_total[5m]))"}
    model = {"name": "m", "alias": "champion", "kpis": [kpi], "slos": [SLO],
             "canary": {"metrics": {"error_rate": {"fail_above": 0.05}}}}
    with pytest.raises(ConfigError) as e:
        parse_config({"models": [model]})
    text = str(e.value)
    assert "canary.metrics.error_rate" in text and "both a KPI and an SLO" in text, text


def test_a_kpi_and_an_slo_sharing_a_name_without_an_override_still_load():
    kpi = {"name": "error_rate", "query": "sum(rate(bad_predictions_total[5m])) / sum(rate(predictions_total[5m]))"}
    cfg = parse_config({"models": [{"name": "m", "alias": "champion", "kpis": [kpi], "slos": [SLO], "canary": {}}]})
    assert cfg.model("m").canary is not None
