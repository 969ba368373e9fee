"""The alerting rules for Vigil itself (dashboards/vigil-alerts.rules.yml): valid for
Prometheus (`promtool check rules`), behaving as their unit tests say (`promtool test
rules`: stale cycles, failing cycles, outbox backlog, a source down, baseline refreshes
that keep failing, a failed rollback, no Vigil scraped at all),
and reading only metrics Vigil exports."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from monitor.cycle.health import SourceHealth
from monitor.metrics import VigilMetrics

DASHBOARDS = Path(__file__).resolve().parents[3] / "dashboards"
RULES = DASHBOARDS / "vigil-alerts.rules.yml"
TESTS = DASHBOARDS / "vigil-alerts.test.yml"
EXPECTED = {"VigilCycleStale", "VigilCyclesFailing", "VigilOutboxBacklog", "VigilSourceDown",
            "VigilBaselineRefreshFailing", "VigilRollbackFailed", "VigilAbsent"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not installed: `make prometheus` (apt-get install prometheus)")
    return subprocess.run([exe, *args], cwd=DASHBOARDS, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules_accepts_the_file():
    r = promtool("check", "rules", RULES.name)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in r.stdout


def test_promtool_unit_tests_pass():
    r = promtool("test", "rules", TESTS.name)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_broken_expectation_fails_the_unit_tests(tmp_path):
    """Keeps the test above honest: promtool does fail when an alert does not behave as written."""
    shutil.copy(RULES, tmp_path / RULES.name)
    broken = TESTS.read_text().replace("eval_time: 18m", "eval_time: 13m", 1)
    (tmp_path / TESTS.name).write_text(broken)
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not installed")
    r = subprocess.run([exe, "test", "rules", TESTS.name], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode != 0 and "VigilCycleStale" in r.stdout + r.stderr


def test_every_alert_is_tested_and_reads_only_metrics_vigil_exports():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == EXPECTED
    tested = {t["alertname"] for case in yaml.safe_load(TESTS.read_text())["tests"] for t in case["alert_rule_test"]}
    assert tested == EXPECTED
    m = VigilMetrics()
    m.init_model("recommender")
    m.cycle_succeeded("recommender", 1.0, "opened")
    SourceHealth.for_sources({"prometheus": "http://127.0.0.1:9090", "tempo": "http://127.0.0.1:3200"}, m,
                             lambda: 0.0).mark("prometheus", True)
    m.outbox_pending.set(0)
    # /metrics serves both registries (monitor/api/health.py), vigil_build_info is in the second
    exported = generate_latest(m.registry).decode() + generate_latest(m.process_registry).decode()
    for r in rules:
        for name in re.findall(r"\b(vigil_[a-z_]+)", r["expr"]):
            assert f"\n{name}" in exported or exported.startswith(name), f"{r['alert']}: {name} is not exported"
