"""A model whose registered model or alias MLflow lacks shows as `registry:<model>` down in
/readyz and `vigil_source_up` on the replica that polls it. When its lease moves to another
replica (a rebalance, a lost lease), the old replica no longer polls it: it kept saying
"down" (and VigilSourceDown fired for it) until a restart, whatever the new owner found."""
from __future__ import annotations

from monitor.daemon import Runtime
from monitor.ownership import LeasedOwnership
from monitor.startup import take_ownership
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry

SOURCE = f"registry:{MODEL}"


def test_a_model_handed_to_another_replica_takes_its_registry_entry_with_it(tmp_path, postgres_url):
    reg = serving_registry()
    del reg.aliases[(MODEL, "champion")]
    cfg = make_config(tmp_path, store={"url": fresh_schema_url(postgres_url)})
    runtime = Runtime(make_vigil(cfg, registry=reg, notifiers={}), None)
    try:
        take_ownership(runtime)
        owner = runtime.owner
        assert isinstance(owner, LeasedOwnership)
        owner.tick([MODEL])
        runtime.vigil.run_cycle(MODEL, T0)
        assert runtime.vigil.health.is_down(SOURCE)

        owner.tick([])  # the model's lease leaves this replica
        assert SOURCE not in runtime.vigil.readiness(), "this replica no longer polls it: not its to report"
        value = runtime.vigil.metrics.registry.get_sample_value("vigil_source_up", {"source": SOURCE})
        assert value is None, "VigilSourceDown must not fire from a replica that no longer has the model"
    finally:
        runtime.owner.close()
        runtime.vigil.store.close()
