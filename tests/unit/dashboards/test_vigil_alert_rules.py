"""The alerting rules for Vigil itself (dashboards/vigil-alerts.rules.yml): valid for
Prometheus (`promtool check rules`), behaving as their unit tests say (`promtool test
rules`: stale cycles, failing cycles, outbox backlog, a source down, baseline refreshes
that keep failing, a failed rollback, no Vigil scraped at all, a notification refused for good, one stuck in retry),
and reading only metrics Vigil exports."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from monitor.cycle.deliver import OutboxSender
from monitor.cycle.health import SourceHealth
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store

DASHBOARDS = Path(__file__).resolve().parents[3] / "dashboards"
RULES = DASHBOARDS / "vigil-alerts.rules.yml"
TESTS = DASHBOARDS / "vigil-alerts.test.yml"
EXPECTED = {"VigilCycleStale", "VigilCyclesFailing", "VigilOutboxBacklog", "VigilSourceDown",
            "VigilBaselineRefreshFailing", "VigilRollbackFailed", "VigilAbsent",
            "VigilNotificationsFailed", "VigilNotificationStuck", "VigilClockSkew"}


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
    m.init_notifier("slack")  # as the daemon's OutboxSender does for each notifier
    # /metrics serves both registries (monitor/api/health.py), vigil_build_info is in the second
    exported = generate_latest(m.registry).decode() + generate_latest(m.process_registry).decode()
    for r in rules:
        for name in re.findall(r"\b(vigil_[a-z_]+)", r["expr"]):
            assert f"\n{name}" in exported or exported.startswith(name), f"{r['alert']}: {name} is not exported"


def test_a_notifiers_first_permanent_failure_is_seen_by_increase(tmp_path):
    """VigilNotificationsFailed reads increase(vigil_notifications_total{status="failed"}):
    a series that first appears at 1 has no increase, so the revoked token's first refused
    page would never fire it. Each notifier's series exist at 0 before anything is sent."""
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    m = VigilMetrics()
    OutboxSender(store, {"pagerduty": Refusing()}, m)
    before = generate_latest(m.registry).decode()
    assert 'vigil_notifications_total{notifier="pagerduty",status="failed"} 0.0' in before
    with store.tx() as s:
        store.enqueue(s, "pagerduty", MessageKind.INCIDENT, "incident:1", {"x": 1}, 1000.0)
    OutboxSender(store, {"pagerduty": Refusing()}, m).deliver_due(1000.0)
    after = generate_latest(m.registry).decode()
    assert 'vigil_notifications_total{notifier="pagerduty",status="failed"} 1.0' in after


class Refusing:
    name = "pagerduty"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.FAILED, error="401 invalid routing key")


def test_a_single_page_stuck_in_retry_shows_its_age(tmp_path):
    """A page retried for an hour is a backlog of one (VigilOutboxBacklog wants more than 10):
    its age is what says that nobody has been paged."""
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    m = VigilMetrics()
    sender = OutboxSender(store, {"pagerduty": Failing()}, m)
    with store.tx() as s:
        store.enqueue(s, "pagerduty", MessageKind.INCIDENT, "incident:1", {"x": 1}, 1000.0)
    for now in (1000.0, 1100.0, 5000.0):  # retried whenever due, failing each time
        sender.deliver_due(now)
    assert m.registry.get_sample_value("vigil_outbox_pending") == 1
    assert m.registry.get_sample_value("vigil_outbox_oldest_pending_age_seconds") == 4000.0
    sender.notifiers = {"pagerduty": Refusing()}
    sender.deliver_due(9000.0)  # gone from the outbox (failed for good): nothing waits
    assert m.registry.get_sample_value("vigil_outbox_oldest_pending_age_seconds") == 0.0


class Failing:
    name = "pagerduty"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.RETRY, error="502 bad gateway")
