"""Every table Vigil declares, in one place: importing this registers them all on `Base`.

Migrations compare against it (monitor/store/migrations/env.py and the test that head
equals it), so a module with a new table is imported here too.
"""
from __future__ import annotations

from sqlalchemy import MetaData

from monitor.store import (
    canary,
    detector_states,
    groups,
    intents,
    labels,
    leases,
    model_now,
    silences,
    slack_seen,
)
from monitor.store.tables import Base

TABLE_MODULES = (canary, detector_states, groups, intents, labels, leases, model_now, silences, slack_seen)


def target_metadata() -> MetaData:
    return Base.metadata
