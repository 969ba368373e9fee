"""Dashboard uids, kept apart from the builders so code that only links to a dashboard
(a Slack message's "open in Grafana") does not load the Grafana SDK."""
from __future__ import annotations

import hashlib
import re

_UID_OK = re.compile(r"[A-Za-z0-9_-]+")
OVERVIEW_UID = "vigil-overview"
VIGIL_UID = "vigil-self"  # Vigil's own health
OVERVIEW_TITLE = "Vigil · overview"
VIGIL_TITLE = "Vigil · itself"
# A model named "overview" or "self" must not take these over: each provision would save
# Vigil's dashboard and then the model's over it (same uid), or be refused (same title).
_RESERVED = frozenset({OVERVIEW_UID, VIGIL_UID})


def dashboard_uid(name: str, prefix: str = "vigil") -> str:
    """Stable uid for a name: readable when it can be, hashed when it must be.

    Grafana uids are at most 40 characters of [A-Za-z0-9_-]. A name that needs
    changing to fit, or would take a uid of Vigil's own dashboards, gets a hash
    suffix so "a.b" and "a-b" (or "overview" and the overview) never collide.
    """
    uid = f"{prefix}-{name}"
    if _UID_OK.fullmatch(uid) and len(uid) <= 40 and uid not in _RESERVED:
        return uid
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:24]
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{prefix}-{slug}-{digest}"[:40]


def model_dashboard_uid(model_name: str) -> str:
    """The uid of a model's dashboard; links to it stay valid across provisions."""
    return dashboard_uid(model_name, "vigil")


def model_dashboard_title(model_name: str) -> str:
    """The title of a model's dashboard, never one of Vigil's own dashboards' titles."""
    title = f"Vigil · {model_name}"
    return f"Vigil · model {model_name}" if title in (OVERVIEW_TITLE, VIGIL_TITLE) else title
