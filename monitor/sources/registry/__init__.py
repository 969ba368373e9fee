"""MLflow model registry: versions, aliases and the deploy events made from them.

MLflow keeps no alias history (moving an alias changes no timestamp), so deploys are
found by polling `alias_version` and diffing against the last state Vigil stored:
`detect_alias_move` is that diff, pure. When Vigil itself moves an alias (rollback,
replay) `move_alias` also writes version tags so the registry carries a record:

    vigil.alias.<alias>.set_at    RFC 3339 UTC time of the move
    vigil.alias.<alias>.previous  the version that held the alias before ("" if none)
    vigil.alias.<alias>.set_by    who moved it ("vigil-rollback", "vigil-replay", ...)

and `alias_record(info, alias)` reads them back. A replayed version's historical
creation time is the tag `vigil.created_at`; `ModelVersionInfo.created_at` prefers it
over MLflow's own `creation_timestamp`, which cannot be back-dated.

Two transports, one behaviour:
- `http(s)://` (an `mlflow server`): the REST API with httpx, retried with tenacity
  inside a deadline of `timeout_s`. MLflow's own client retries 7 times with backoff
  (against a refused port it had not given up after 200 s), which would stall a cycle.
- `sqlite:///path` : MLflow's store through `MlflowClient`, for demos, replay and tests.
  The file is checked first with the stdlib: MLflow retries opening a bad database
  for about 100 s before it gives up.

Versions are strings everywhere here (MLflow gives ints over SQLite, strings over HTTP).

Modules: `versions` (ModelVersionInfo, ModelNotFound), `timestamps` (RFC 3339),
`alias_tags` (the tags above), `deploys` (detect_alias_move), `rest` and `sql_store`
(the two transports), `source` (RegistrySource). Import from this package.
"""
from monitor.sources.registry.alias_tags import AliasRecord, alias_record, alias_tag
from monitor.sources.registry.deploys import detect_alias_move
from monitor.sources.registry.source import RegistrySource
from monitor.sources.registry.timestamps import format_timestamp, parse_timestamp
from monitor.sources.registry.versions import (
    CREATED_AT_TAG,
    REFERENCE_TAG,
    SOURCE,
    ModelNotFound,
    ModelVersionInfo,
)

__all__ = [
    "CREATED_AT_TAG",
    "REFERENCE_TAG",
    "SOURCE",
    "AliasRecord",
    "ModelNotFound",
    "ModelVersionInfo",
    "RegistrySource",
    "alias_record",
    "alias_tag",
    "detect_alias_move",
    "format_timestamp",
    "parse_timestamp",
]
