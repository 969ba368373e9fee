"""Grafana dashboards built from plain specs (spec.py), their provisioning (files or
HTTP API), and annotations for deploys, incidents and rollbacks. It knows nothing of
Vigil's config or outbox: monitor/grafana/ maps those onto it. See README.md."""
