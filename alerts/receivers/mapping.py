"""Pure mappings from a receiver record (alerts/receivers/record.py) to each backend's
request bodies, and which calls a state change needs given what was sent before (`ref`).

No I/O, no clock: the notifiers pass the time in. Field limits are the documented ones
(PagerDuty Events API v2: summary 1024 chars; Opsgenie Alert API: message 130, alias
512, description 15000, entity 512, source 100, at most 20 tags of 50 chars, details
values are strings).
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from alerts.policy import Severity
from alerts.receivers.record import state_of
from detectors.records import PARTIAL_WORDS

PD_SEVERITY = {"critical": "critical", "warning": "warning"}  # PD also has error/info: not used
OPSGENIE_PRIORITY = {"critical": "P1", "warning": "P3"}
ALERTNAME = "VigilIncident"
GROUP_ALERTNAME = "VigilSharedCause"
# Set on a change that pages no one (monitor/cycle/receivers.py): an edit (an ack, a rollback
# shown) or a change of a member its shared cause pages for.
HELD = "held"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def summary(record: dict[str, Any]) -> str:
    return f"[{record['severity']}] {record['model']}: {record['title']}"


def _top(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("top_cause") or {}


def _finding_line(f: dict[str, Any]) -> str:
    stat = f" ({f['statistic']})" if f.get("statistic") else ""
    partial = f" ({PARTIAL_WORDS}: {f['partial']})" if f.get("partial") else ""
    return f"{f.get('kind')} {f.get('entity')}{stat}: {f.get('value')} vs threshold {f.get('threshold')}{partial}"


def affected_models(record: dict[str, Any]) -> list[str]:
    """A shared cause's models, one line each with its evidence (empty for an incident)."""
    out = []
    for m in record.get("models") or []:
        evidence = "; ".join(_finding_line(f) for f in m.get("findings") or [])
        out.append(f"{m['model']} ({m.get('severity')}): {m.get('title')}" + (f" [{evidence}]" if evidence else ""))
    return out


def _ids(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("group_id") is not None:
        return {"group_id": record["group_id"], "affected_models": affected_models(record)}
    return {"incident_id": record["incident_id"]}


def steps(record: dict[str, Any], ref: dict[str, Any] | None, *, open_: str, ack: str, close: str) -> list[str]:
    """The calls one state change needs, in order, given the ref of the last delivery.

    Every call is idempotent on the backend (same dedup key), so a repeat is harmless;
    this only avoids needless ones: an acknowledgement is sent once, and an update of an
    acknowledged incident re-sends the open call (new details, the ack stays).

    An incident acknowledged on the backend that is no longer acknowledged in Vigil escalated
    past the severity acknowledged (the ack lapsed). PagerDuty and Opsgenie keep an
    acknowledged alert acknowledged on a new open call, so the escalation would page no one:
    the alert is closed and opened anew, a new alert at the new severity. Not for a change
    that pages no one (`held`): a member its shared cause holds (the group's alert pages for
    the escalation, a new alert of its own would page the same people twice) or an edit (a
    rollback shown while a silence holds the escalation back); the open call updates the
    acknowledged alert, which stays acknowledged (`sent_ref` keeps that in mind). Nor for one
    at no higher severity than the backend's ack covers: an update built before the ack
    committed and sent after it, which paged a new alert (`~2`) nobody acknowledged."""
    state = state_of(record)
    if state == "resolved":
        return [close]
    if state == "acknowledged":
        if ref and ref.get("acknowledged"):
            return [open_]
        return ([open_] if not ref else []) + [ack]
    if _reopens(record, ref):
        return [close, open_]
    return [open_]


def _covered(ref: dict[str, Any]) -> str | None:
    """The severity the backend's ack covers (the highest it was acknowledged at); None when
    unknown (a ref from before this was kept, left by a held change): reopened as before."""
    if ref.get("acked_severity"):
        return str(ref["acked_severity"])
    return str(ref["severity"]) if ref.get("state") == "acknowledged" and ref.get("severity") else None


def _rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:  # not one of Vigil's: below both
        return 0


def _reopens(record: dict[str, Any], ref: dict[str, Any] | None) -> bool:
    """Whether this change closes the backend's acknowledged alert and opens a new one (`steps`)."""
    if not ref or not ref.get("acknowledged") or record.get(HELD) or state_of(record) != "triggered":
        return False
    covered = _covered(ref)
    return covered is None or _rank(str(record["severity"])) > _rank(covered)


def calls(record: dict[str, Any], ref: dict[str, Any] | None, *, open_: str, ack: str,
          close: str) -> list[tuple[str, dict[str, Any]]]:
    """`steps`, each with the record it is made for. A close and a new open (an escalation
    past a lapsed ack) open the new alert under a key of its own (`reopened`): the same
    message sent again (its answer lost, its sender's claim lapsed) closes the old alert
    again, a no-op, and its open folds into the new alert, where under one key it closed
    the new page and opened a third. The new key is kept in `sent_ref`, so the later
    changes (ack, resolve) reach the new alert."""
    actions = steps(record, ref, open_=open_, ack=ack, close=close)
    if actions[:2] == [close, open_]:
        return [(close, record), (open_, reopened(record))]
    return [(a, record) for a in actions]


_REOPENED = re.compile(r"(.*)~(\d+)")


def reopened(record: dict[str, Any]) -> dict[str, Any]:
    """`record` under the key of the alert that replaces its closed one: `<key>~2`, then `~3`."""
    key = str(record["dedup_key"])
    m = _REOPENED.fullmatch(key)
    return {**record, "dedup_key": f"{m[1]}~{int(m[2]) + 1}" if m else f"{key}~2"}


def sent_ref(record: dict[str, Any], ref: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a receiver keeps for the next message of the same incident (`ref`: the last one).

    `acknowledged` is the backend's side: a held change's open call leaves an acknowledged
    alert acknowledged, so once the escalation is told (the member pages as itself, the
    silence ends) it still closes that alert and opens a new one."""
    state = state_of(record)
    before = ref or {}
    still_acked = bool(state != "resolved" and before.get("acknowledged") and not _reopens(record, before))
    acknowledged = state == "acknowledged" or still_acked
    covered = _covered(before) if before.get("acknowledged") and not _reopens(record, before) else None
    if state == "acknowledged" and (covered is None or _rank(str(record["severity"])) > _rank(covered)):
        covered = str(record["severity"])
    return {"dedup_key": record["dedup_key"], "state": state, "severity": record["severity"],
            "acknowledged": acknowledged, **({"acked_severity": covered} if acknowledged and covered else {})}


# --------------------------------------------------------------------------- PagerDuty
def pagerduty_event(record: dict[str, Any], action: str, routing_key: str, *, source: str) -> dict[str, Any]:
    """One Events API v2 event: `trigger` carries the payload, `acknowledge`/`resolve` only the key."""
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": record["dedup_key"]}
    if action != "trigger":
        return event
    top = _top(record)
    links = record.get("links") or {}
    event["payload"] = {
        "summary": summary(record)[:1024],
        "source": source or f"vigil/{record['model']}",
        "severity": PD_SEVERITY.get(record["severity"], "warning"),
        "timestamp": iso(record["opened_at"]),
        "component": record["model"],
        "group": top.get("entity") or record["model"],
        "class": top.get("kind") or "unknown",
        "custom_details": {
            **_ids(record),
            "top_cause": top.get("explanation") or "no cause stands out",
            "top_cause_confidence": top.get("score"),
            "findings": [_finding_line(f) for f in record["findings"]],
            "finding_count": record["finding_count"],
            "updated_at": iso(record["updated_at"]),
        },
    }
    event["client"] = "Vigil"
    if links:
        event["client_url"] = next(iter(links.values()))
        event["links"] = [{"href": href, "text": name.replace("_", " ")} for name, href in links.items()]
    return event


# --------------------------------------------------------------------------- Opsgenie
def opsgenie_create(record: dict[str, Any], *, source: str, responders: list[dict[str, str]]) -> dict[str, Any]:
    top = _top(record)
    links = record.get("links") or {}
    lines = [record["title"], "", f"Top cause: {top.get('explanation') or 'no cause stands out'}", ""]
    models = affected_models(record)
    lines += ["Affected models:"] + [f"- {line}" for line in models] if models else \
        [f"- {_finding_line(f)}" for f in record["findings"]]
    lines += [""] + [f"{name}: {href}" for name, href in links.items()]
    ident = {"group_id": str(record["group_id"])} if record.get("group_id") is not None else \
        {"incident_id": str(record["incident_id"])}
    details = {**ident, "model": record["model"],
               "severity": record["severity"], **{f"link_{k}": v for k, v in links.items()}}
    body: dict[str, Any] = {
        "message": summary(record)[:130],
        "alias": record["dedup_key"][:512],
        "description": "\n".join(lines)[:15000],
        "tags": _opsgenie_tags(record),
        "details": {k: str(v)[:8000] for k, v in details.items()},
        "entity": str(top.get("entity") or record["model"])[:512],
        "source": source[:100],
        "priority": OPSGENIE_PRIORITY.get(record["severity"], "P3"),
    }
    if responders:
        body["responders"] = responders
    return body


def opsgenie_action(record: dict[str, Any], action: str, *, source: str) -> dict[str, Any]:
    """The body of an acknowledge or close call."""
    if action == "acknowledge":
        who = record.get("acknowledged_by") or "someone"
        return {"source": source[:100], "user": who[:100], "note": f"Acknowledged in Vigil by {who}"}
    if state_of(record) != "resolved":  # closed to be opened anew (see `steps`)
        return {"source": source[:100], "note": f"Escalated to {record['severity']} in Vigil past the severity "
                                                 "acknowledged: a new alert replaces this one"}
    return {"source": source[:100], "note": "Resolved in Vigil: the signals are back within their thresholds"}


OPSGENIE_MAX_TAGS, OPSGENIE_TAG_CHARS = 20, 50


def _opsgenie_tags(record: dict[str, Any]) -> list[str]:
    """Tags within Opsgenie's 20 x 50 characters (a model name may be 100 long, a group
    20 models): the fixed ones first, then as many model tags as fit, each clipped."""
    fixed = ["vigil", f"severity:{record['severity']}"]
    models = [t[:OPSGENIE_TAG_CHARS] for t in _model_tags(record)]
    return fixed + list(dict.fromkeys(models))[:OPSGENIE_MAX_TAGS - len(fixed)]


def _model_tags(record: dict[str, Any]) -> list[str]:
    if record.get("group_id") is not None:
        return ["shared-cause"] + [f"model:{m['model']}" for m in record.get("models") or []]
    return [f"model:{record['model']}"]


# --------------------------------------------------------------------------- Alertmanager
def alertmanager_alert(record: dict[str, Any], *, now: float, ttl_s: float,
                       extra_labels: dict[str, str]) -> dict[str, Any]:
    """One postable alert. Open: endsAt = now + ttl_s (re-pushed before it passes, as
    Prometheus does); resolved: endsAt = the resolution time, which ends it."""
    top = _top(record)
    links = record.get("links") or {}
    labels = {**extra_labels, "alertname": ALERTNAME, "model": record["model"], "severity": record["severity"],
              "entity": str(top.get("entity") or record["model"]), "vigil_incident": record["dedup_key"]}
    models = affected_models(record)
    if record.get("group_id") is not None:
        # Labels stay the same while members come and go (a new label set would be a new alert).
        labels = {**extra_labels, "alertname": GROUP_ALERTNAME, "severity": record["severity"],
                  "cause_kind": str(record.get("cause_kind")), "entity": str(top.get("entity")),
                  "vigil_incident": record["dedup_key"]}
    annotations = {**({"models": "\n".join(models)} if models else {}), "summary": summary(record),
                   "description": top.get("explanation") or "no cause stands out",
                   "findings": "; ".join(_finding_line(f) for f in record["findings"]),
                   **{f"{k}_url": v for k, v in links.items()}}
    if record.get("acknowledged_by"):
        annotations["acknowledged_by"] = record["acknowledged_by"]
    resolved = record.get("resolved_at")
    ends = resolved if state_of(record) == "resolved" and resolved is not None else now + ttl_s
    alert: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": iso(record["opened_at"]),
                             "endsAt": iso(max(ends, record["opened_at"] + 1))}
    if links:
        alert["generatorURL"] = next(iter(links.values()))
    return alert


def ended(alert: dict[str, Any], at: float) -> dict[str, Any]:
    """`alert` (as pushed before) ended at `at`: its labels changed, so the old series must stop."""
    return {**alert, "endsAt": iso(at)}


# --------------------------------------------------------------------------- webhook
def webhook_body(record: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    return {"event": state_of(record), "idempotency_key": idempotency_key, **record}
