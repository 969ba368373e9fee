"""Vigil's config meets Grafana here: the config -> dashboard-spec mapping, the
provisioning entry points the daemon and CLI call, and the outbox notifier that
posts annotations. `dashboards/` stays config-free and builds from the specs."""
