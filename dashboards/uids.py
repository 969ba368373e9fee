"""Dashboard uids, kept apart from the builders so code that only links to a dashboard
(a Slack message's "open in Grafana") does not load the Grafana SDK."""
from __future__ import annotations

import hashlib
import re

_UID_OK = re.compile(r"[A-Za-z0-9_-]+")
OVERVIEW_UID = "vigil-overview"
VIGIL_UID = "vigil-self"  # Vigil's own health


def dashboard_uid(name: str, prefix: str = "vigil") -> str:
    """Stable uid for a name: readable when it can be, hashed when it must be.

    Grafana uids are at most 40 characters of [A-Za-z0-9_-]. A name that needs
    changing to fit gets a hash suffix so "a.b" and "a-b" never collide.
    """
    uid = f"{prefix}-{name}"
    if _UID_OK.fullmatch(uid) and len(uid) <= 40:
        return uid
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:24]
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{prefix}-{slug}-{digest}"[:40]


def model_dashboard_uid(model_name: str) -> str:
    """The uid of a model's dashboard; links to it stay valid across provisions."""
    return dashboard_uid(model_name, "vigil")
