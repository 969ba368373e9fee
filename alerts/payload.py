"""The message bodies the outbox stores and every notifier renders (Slack blocks, JSON
lines, annotations). One shape per kind of message; notifiers read, never compute."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.lifecycle import IncidentStatus
from alerts.rollback import AUTOMATIC, ActionStatus
from correlators.deploy_advice import NO_DATA_CHECK
from correlators.no_data import QUERY_CHECK
from detectors.records import json_safe


@dataclass(frozen=True)
class IncidentSnapshot:
    """An incident as notifications show it, taken from the store at the moment of sending."""

    incident_id: int
    model: str
    severity: str
    status: str
    title: str
    opened_at: float
    resolved_at: float | None
    acknowledged_by: str | None
    findings: list[dict[str, Any]]
    causes: list[dict[str, Any]]
    cold_start: bool


def incident_payload(snap: IncidentSnapshot, *, channel: str, updated_at: float, actions: list[dict[str, Any]],
                     links: dict[str, str | None], display: dict[str, Any] | None = None,
                     serving: str | None = None) -> dict[str, Any]:
    """The chat message body: everything a person needs to act, for one channel. `display`:
    how renderers word it (alerts/wording.py: time zone, KPI baseline length, cold start length).
    `serving`: the version the alias was last seen on (None: unknown)."""
    return json_safe({
        "incident_id": snap.incident_id,
        "model": snap.model,
        "severity": snap.severity,
        "status": snap.status,
        "title": snap.title,
        "channel": channel,
        "opened_at": snap.opened_at,
        "updated_at": updated_at,
        "resolved_at": snap.resolved_at,
        "acknowledged_by": snap.acknowledged_by,
        "findings": snap.findings,
        "causes": snap.causes,
        "suggested_action": suggested_action(snap.causes, actions, snap.status, snap.model, serving),
        "actions": actions,
        "links": links,
        "cold_start": snap.cold_start,
        "display": display or {},
    })


def incident_summary(snap: IncidentSnapshot) -> dict[str, Any]:
    """The timeline body (an annotation region): what happened and when, no channel."""
    return {"incident_id": snap.incident_id, "model": snap.model, "severity": snap.severity,
            "status": snap.status, "title": snap.title, "opened_at": snap.opened_at,
            "resolved_at": snap.resolved_at, "summary": snap.title}


def suggested_action(causes: list[dict[str, Any]], actions: list[dict[str, Any]], status: str,
                     model: str = "<model>", serving: str | None = None) -> str:
    if status == IncidentStatus.RESOLVED:
        return "Nothing to do: the signals are back within their thresholds."
    pulled = [a for a in actions if a.get("kind") == "canary_pull" and a.get("status") == ActionStatus.DONE]
    if pulled:
        a = pulled[-1]
        why = a.get("reason") or "the canary table says which metric failed"  # its own accuracy, too
        return (f"Vigil pulled challenger v{a['from_version']}: its alias is removed and its traffic serves "
                f"v{a['to_version']}. Fix it offline ({why}) before the next canary.")
    # The last move of the alias is what serves now: a rollback followed by a move on to a new
    # version (a "promotion") once kept saying "rolled back to v1" while v3 served. Told as
    # whoever made it: a person's rollback is not Vigil's own.
    done = [a for a in actions if a.get("kind") in ("rollback", "promotion") and a.get("status") == ActionStatus.DONE]
    if done:
        a = done[-1]
        who = "Vigil" if a.get("actor") in (None, "", AUTOMATIC) else str(a["actor"])
        if serving is not None and serving != str(a["to_version"]):
            if (refused := _refused_since(a, causes, actions, serving)) is not None:
                return (f"v{serving} serves now (set after {who} moved the alias to v{a['to_version']}) and is blamed, "
                        f"but Vigil's rollback of it was refused ({refused.get('reason') or refused.get('detail')}). "
                        f"If v{serving} is the cause, roll back with POST /v1/models/{model}/rollback: that guard "
                        "holds only Vigil's own rollbacks.")
            # Moved since outside Vigil (CI, the MLflow UI): "rolled back to v1 ... investigate
            # v2" would send on-call after a version that no longer serves.
            return (f"The alias serves v{serving} now: it moved since {who} set it to v{a['to_version']}. "
                    f"Confirm the KPIs recover with v{serving}.")
        if a.get("kind") == "promotion" or _newer(a["to_version"], a["from_version"]):
            # A "rollback" to a newer version (forced back to the blamed one, say) left nothing
            # to investigate offline: "investigate v1" named the version it moved away from.
            return (f"{who} moved the model on to v{a['to_version']} (from v{a['from_version']}). Confirm the KPIs "
                    f"recover with v{a['to_version']}.")
        return (f"{who} rolled back to v{a['to_version']}. Confirm the KPIs recover, then investigate "
                f"v{a['from_version']} offline before redeploying.")
    if not causes:
        return "No cause stands out: check the linked dashboard and recent changes."
    top = causes[0]
    kind = top.get("kind")
    if kind == "deploy" and (now := (top.get("evidence") or {}).get("replaced_by")) is not None:
        # A person moved the alias since the blamed deploy: "roll back to v1" would take their v3 out unsaid.
        if not (top.get("evidence") or {}).get("replaced_forward"):
            return f"The alias went back to v{now} after this began: confirm the signals recover with it."
        return (f"v{now} serves now, released after this began: judge it on the signals since; if it did not fix "
                f"them, roll back with POST /v1/models/{model}/rollback and to_version (that takes v{now} out).")
    if kind == "deploy":
        return _deploy_advice(top.get("evidence") or {}, model)
    if kind == "canary":
        return (f"Pull the challenger (remove its alias) if Vigil has not: canary.pull in vigil.yaml, "
                f"or the registry. {top.get('explanation', '')}"[:400])
    if kind == "gpu_saturation":
        return "Scale out or shed load (cap concurrency / batch size); the model itself did not change."
    if kind == "upstream_drift":
        return "Check the upstream feature pipeline and data sources for the drifted features; no rollback needed."
    if kind == "no_data":  # no deploy explains it: nothing to roll back
        return f"{QUERY_CHECK} No rollback: no deploy explains the missing data."
    if kind == "service":
        return f"Look at {top.get('entity')} first: " + str(top.get("explanation", ""))[:300]
    return "Investigate the top cause."


def _deploy_advice(ev: dict[str, Any], model: str) -> str:
    # Its only symptoms are series that stopped after it: the version may no longer export them.
    check = f"{NO_DATA_CHECK} If the deploy dropped them, r" if ev.get("only_no_data") else "R"
    if prev := ev.get("previous_version"):
        why = "" if ev.get("only_no_data") else " if the deploy is the cause"
        return f"{check}oll back to v{prev} (button below, or POST /v1/models/{model}/rollback){why}."
    # Vigil's first read of the alias: what served before is unknown to it, so is a default target.
    version = ev.get("version", "?")
    check = check if ev.get("only_no_data") else "If the deploy is the cause, r"
    return (f"{check}oll back with POST /v1/models/{model}/rollback and to_version naming the version "
            f"'{ev.get('alias') or 'the alias'}' should serve: Vigil has not seen one before v{version} (the "
            f"registry lists them; if v{version} is the model's first there is none: fix forward).")


def _refused_since(move: dict[str, Any], causes: list[dict[str, Any]], actions: list[dict[str, Any]],
                   serving: str) -> dict[str, Any] | None:
    """Vigil's refused rollback of `serving` (a release made after `move`, now the top cause):
    "confirm the KPIs recover with v3" read as if nothing were wrong with the blamed v3. Its
    own (actor vigil) only: a person's refused ask (a `stay`, a moved alias) is no guard of Vigil's."""
    top = causes[0] if causes else {}
    if top.get("kind") != "deploy" or str((top.get("evidence") or {}).get("version")) != serving:
        return None
    after = [a for a in actions if a.get("kind") == "rollback" and a.get("status") == ActionStatus.REFUSED
             and a.get("actor") == AUTOMATIC and float(a.get("at") or 0.0) >= float(move.get("at") or 0.0)]
    return after[-1] if after else None


def _newer(version: Any, than: Any) -> bool:
    """Whether `version` is newer than `than`, compared as numbers (MLflow's versions are)."""
    return str(version).isdigit() and str(than).isdigit() and int(version) > int(than)
