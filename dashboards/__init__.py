"""Grafana dashboards generated from Vigil's config, their provisioning (files or HTTP
API), and annotations for deploys, incidents and rollbacks. See README.md."""
