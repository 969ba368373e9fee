"""The audit log's keys, signed checkpoints and verification (the chain itself: alerts/audit.py).

`wiring.install` gives a store its key and a `Checkpointer`; `verify.verify_log` is what
`vigil audit verify` and `GET /v1/audit` report. This package file imports nothing, so
monitor.config can import `audit.config` without pulling in the store.
"""
