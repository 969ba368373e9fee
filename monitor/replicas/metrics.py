"""Lease metrics on the caller's registry (the lead passes `VigilMetrics.registry`)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class LeaseMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.models_owned = Gauge("vigil_models_owned", "Models whose lease this replica holds", registry=registry)
        self.replicas_live = Gauge("vigil_replicas_live", "Replicas with a recent heartbeat, as this replica saw them",
                                   registry=registry)
        self.acquisitions = Counter("vigil_lease_acquisitions_total", "Model leases this replica acquired",
                                    registry=registry)
        self.releases = Counter("vigil_lease_releases_total",
                                "Model leases this replica gave up because another replica is assigned them",
                                registry=registry)
        self.losses = Counter("vigil_lease_losses_total",
                              "Model leases this replica lost without releasing them (expired or taken over)",
                              registry=registry)
        self.heartbeat_errors = Counter("vigil_lease_heartbeat_errors_total",
                                        "Heartbeats or rebalances that failed (database unreachable, ...)",
                                        registry=registry)
