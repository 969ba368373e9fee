"""Where an incident's message points: the model's Grafana dashboard over the incident's
time range (opened on the top finding's panel when it has one), the drift report at
Vigil's public URL, the model version in the MLflow registry UI, and the runbook for what
was found.

Pure: plain values in, URLs out (monitor/cycle/messages.py reads the config). A link
whose target is not configured is None, never a guess.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

DRIFT_KINDS = ("feature_drift", "prediction_drift")

# Label and order of each link in a message.
LINK_LABELS: tuple[tuple[str, str], ...] = (
    ("grafana", ":bar_chart: Grafana"),
    ("drift_report", ":page_facing_up: Drift report"),
    ("mlflow", ":package: Model version in MLflow"),
    ("runbook", ":book: Runbook"),
)


@dataclass(frozen=True)
class LinkSettings:
    grafana_base: str | None  # Grafana's public URL
    api_base: str  # Vigil's public URL
    mlflow_ui: str | None = None  # the registry UI (the tracking server's URL)
    runbooks: Mapping[str, str] = field(default_factory=dict)  # finding kind or "default" -> URL
    model_runbooks: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # model -> kind -> URL
    before_s: float = 3600.0  # the Grafana range starts this long before the onset
    after_s: float = 3600.0  # ... and ends this long after the last update
    grafana_org: int | None = None  # the dashboards' organization: Grafana switches the viewer to it


@dataclass(frozen=True)
class IncidentRef:
    """What the links need to know of one incident."""

    model: str
    incident_id: int
    dashboard_uid: str
    onset: float
    last_seen: float  # resolved_at, else the time of this message
    kinds: Sequence[str] = ()  # the findings' kinds, strongest first
    registry_name: str | None = None
    version: str | None = None  # the version serving (or blamed)
    panel_id: int | None = None  # the dashboard panel of the strongest finding (dashboards/finding_panels.py)


def grafana_url(base: str, uid: str, start: float, end: float, panel_id: int | None = None,
                org_id: int | None = None) -> str:
    """The dashboard from `start` to `end` (epoch seconds), as Grafana's from/to in milliseconds;
    with `panel_id`, that panel alone (Grafana's `viewPanel`), else the whole dashboard. With
    `org_id` (Grafana's `orgId`), a viewer whose current organization is another is switched to
    the dashboard's instead of being told "Dashboard not found"."""
    params: dict[str, int] = {"orgId": org_id} if org_id is not None else {}
    params.update({"from": int(start * 1000), "to": int(end * 1000)})
    if panel_id is not None:
        params["viewPanel"] = panel_id
    query = urlencode(params)
    return f"{base.rstrip('/')}/d/{quote(uid, safe='')}?{query}"


def mlflow_version_url(ui: str, registry_name: str, version: str) -> str:
    """MLflow's UI route for one registered model version."""
    return f"{ui.rstrip('/')}/#/models/{quote(registry_name, safe='')}/versions/{quote(version, safe='')}"


def runbook_url(s: LinkSettings, model: str, kinds: Sequence[str]) -> str | None:
    """The model's runbook for the strongest finding's kind, its default, then the global ones."""
    own = s.model_runbooks.get(model, {})
    for table in (own, s.runbooks):
        for kind in kinds:
            if kind in table:
                return table[kind]
        if "default" in table:
            return table["default"]
    return None


def incident_links(s: LinkSettings, ref: IncidentRef) -> dict[str, str | None]:
    has_drift = any(k in DRIFT_KINDS for k in ref.kinds)
    return {
        "grafana": grafana_url(s.grafana_base, ref.dashboard_uid, ref.onset - s.before_s, ref.last_seen + s.after_s,
                               ref.panel_id, s.grafana_org) if s.grafana_base else None,
        "drift_report": f"{s.api_base.rstrip('/')}/v1/incidents/{ref.incident_id}/drift-report"
        if has_drift else None,
        "mlflow": mlflow_version_url(s.mlflow_ui, ref.registry_name or ref.model, ref.version)
        if s.mlflow_ui and ref.version else None,
        "runbook": runbook_url(s, ref.model, ref.kinds),
    }


def link_list(links: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """(label, url) of the links that are set, in the order a message shows them."""
    return [(label, str(links[key])) for key, label in LINK_LABELS if links.get(key)]
