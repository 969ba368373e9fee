"""Receivers beyond chat: PagerDuty, Opsgenie, a signed webhook and Alertmanager.

Each is a `Notifier` behind the outbox (alerts/outbox.py): it gets one stored
`receiver_record` (alerts/receivers/record.py) per state change of an incident and turns
it into its backend's calls with the pure mappings in alerts/receivers/mapping.py.
Every call they make is idempotent (a stable dedup key, alias or idempotency key per
incident), so a retry, a restart or a second replica never opens a second page.
"""
