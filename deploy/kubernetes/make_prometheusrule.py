"""Write deploy/kubernetes/prometheusrule.yaml from dashboards/vigil-alerts.rules.yml.

A Prometheus Operator PrometheusRule holds the same `groups:` as a Prometheus rule file,
so Vigil's own alerting rules are written once (dashboards/, checked with promtool) and
wrapped here. Run after changing the rules: `python deploy/kubernetes/make_prometheusrule.py`;
tests/unit/deploy/test_kubernetes.py fails while the two disagree.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "dashboards" / "vigil-alerts.rules.yml"
OUT = Path(__file__).resolve().parent / "prometheusrule.yaml"
HEADER = ("# Generated from dashboards/vigil-alerts.rules.yml by deploy/kubernetes/make_prometheusrule.py;\n"
          "# edit the rules file, then run the script.\n")


def prometheus_rule(rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "vigil", "labels": {"app.kubernetes.io/name": "vigil"}},
            "spec": {"groups": rules["groups"]}}


def main() -> int:
    if not RULES.exists():
        print(f"{RULES} not found", file=sys.stderr)
        return 1
    doc = prometheus_rule(yaml.safe_load(RULES.read_text()))
    OUT.write_text(HEADER + yaml.safe_dump(doc, sort_keys=False, width=120))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
