"""Deploys, incidents and rollbacks posted as Grafana annotations by the outbox's "grafana"
notifier (monitor/grafana/annotations.py over dashboards/annotations.py), against a local
Grafana API server that follows contracts/README.md section 4."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from dashboards.grafana_api import GrafanaClient
from dashboards.provisioning import build_all
from monitor.grafana.annotations import GrafanaAnnotationNotifier

try:
    from tests.fakes.grafana_server import FakeGrafana
    from tests.unit.dashboards.test_dashboards_build import sample_spec
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.grafana_server import FakeGrafana
    from test_dashboards_build import sample_spec

TOKEN = "test-token"


@pytest.fixture()
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana(tokens={TOKEN: "admin", "viewer-token": "viewer"}) as g:
        yield g


def client(g: FakeGrafana, token: str | None = TOKEN, retries: int = 0) -> GrafanaClient:
    return GrafanaClient(g.url, token, timeout_s=2.0, retries=retries)


def deploy_msg(i: int = 1, attempts: int = 0) -> OutboxMessage:
    return OutboxMessage(id=i, notifier="grafana", kind=MessageKind.DEPLOY, key=f"deploy:recommender:{i + 3}",
                         attempts=attempts,
                         payload={"model": "recommender", "alias": "champion", "version": str(i + 3),
                                  "previous_version": str(i + 2), "at": 1_790_000_000.25 + i})


def incident_msg(status: str, i: int = 10, ref: dict | None = None) -> OutboxMessage:
    return OutboxMessage(id=i, notifier="grafana", kind=MessageKind.INCIDENT, key="incident:42", ref=ref,
                         payload={"incident_id": 42, "model": "recommender", "severity": "critical", "status": status,
                                  "title": "CTR dropped 8% after deploy v4", "opened_at": 1_790_000_100.0,
                                  "resolved_at": 1_790_003_700.5 if status == "resolved" else None,
                                  "summary": "top cause: deploy v4 (confidence 0.82)"})


def rollback_msg() -> OutboxMessage:
    return OutboxMessage(id=20, notifier="grafana", kind=MessageKind.ROLLBACK, key="rollback:7",
                         payload={"model": "recommender", "from_version": "4", "to_version": "3",
                                  "at": 1_790_000_400.0, "status": "done", "reason": "critical incident 42",
                                  "dry_run": False, "actor": "vigil"})


def test_deploy_and_rollback_annotations(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    r1, r2 = n.deliver(deploy_msg()), n.deliver(rollback_msg())
    assert r1.status == r2.status == DeliveryStatus.DELIVERED
    dep, rb = grafana.annotations[r1.ref["annotation_id"]], grafana.annotations[r2.ref["annotation_id"]]
    assert dep["time"] == 1_790_000_001_250 and dep["tags"][:4] == ["vigil", "deploy", "recommender", "v4"]
    assert dep["text"] == "Deploy: recommender champion -> v4 (was v3)"
    assert rb["time"] == 1_790_000_400_000 and rb["tags"][:4] == ["vigil", "rollback", "recommender", "done"]
    assert "v4 -> v3" in rb["text"] and "critical incident 42" in rb["text"]


def _shown(g: FakeGrafana, tags: list[str], params: dict[str, str]) -> list[str]:
    """What Grafana answers the dashboard's own query for these tags (the frontend sends them
    as repeated `tags`, without matchAny for the annotations list panel)."""
    query = [("tags", t) for t in tags] + list(params.items())
    with httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        resp = http.get("/api/annotations", params=query)
    assert resp.status_code == 200, resp.text
    return sorted(a["text"].split(" ")[0] for a in resp.json())


def test_the_dashboards_show_every_annotation_vigil_posts(grafana: FakeGrafana) -> None:
    """Grafana splits a tag at its colon into a key and a value and counts every tag that
    matches one of the query's: a key tag `incident:42` also matched the query tag `incident`,
    so no dashboard showed a single deploy, incident or rollback Vigil posted."""
    n = GrafanaAnnotationNotifier(client(grafana))
    for m in (deploy_msg(), incident_msg("open"), rollback_msg()):
        assert n.deliver(m).status == DeliveryStatus.DELIVERED
    want = {"Deploys": ["Deploy:"], "Incidents": ["[critical]"], "Rollbacks": ["Rollback"],
            "Recent deploys": ["Deploy:"], "Recent incidents": ["[critical]"], "Recent rollbacks": ["Rollback"]}
    seen = 0
    for d in build_all(sample_spec()):
        if d["uid"] not in ("vigil-recommender", "vigil-overview"):
            continue
        for q in d["annotations"]["list"]:
            target = q["target"]
            params = {"type": "tags", "limit": "100", "matchAny": str(target["matchAny"]).lower()}
            assert _shown(grafana, target["tags"], params) == want[q["name"]], (d["uid"], q["name"])
            seen += 1
        for p in d["panels"]:
            if p["type"] == "annolist":
                params = {"type": "annotation", "limit": str(p["options"]["limit"])}
                assert _shown(grafana, p["options"]["tags"], params) == want[p["title"]], p["title"]
                seen += 1
    assert seen == 9


def test_incident_opens_a_region_and_resolve_patches_its_end(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    opened = n.deliver(incident_msg("open"))
    assert opened.status == DeliveryStatus.DELIVERED
    aid = opened.ref["annotation_id"]
    assert grafana.annotations[aid]["time"] == 1_790_000_100_000
    resolved = n.deliver(incident_msg("resolved", i=11, ref=opened.ref))
    assert resolved.status == DeliveryStatus.DELIVERED and resolved.ref == {"annotation_id": aid}
    assert len(grafana.annotations) == 1
    a = grafana.annotations[aid]
    assert (a["time"], a["timeEnd"]) == (1_790_000_100_000, 1_790_003_700_500) and "(resolved)" in a["text"]
    assert [c.method for c in grafana.calls(path="/api/annotations")] == ["POST", "PATCH"]


def test_resolve_of_a_deleted_annotation_recreates_the_region(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    r = n.deliver(incident_msg("resolved", ref={"annotation_id": 999}))
    assert r.status == DeliveryStatus.DELIVERED and r.ref["annotation_id"] != 999
    a = grafana.annotations[r.ref["annotation_id"]]
    assert a["timeEnd"] - a["time"] == 3_600_500


@pytest.mark.parametrize("status, retry_after, expected, after", [
    (503, None, DeliveryStatus.RETRY, None),
    (500, None, DeliveryStatus.RETRY, None),
    (429, "12", DeliveryStatus.RETRY, 12.0),
    (401, None, DeliveryStatus.FAILED, None),
    (403, None, DeliveryStatus.FAILED, None),
    (400, None, DeliveryStatus.FAILED, None),
])
def test_delivery_status_by_grafana_answer(grafana: FakeGrafana, status: int, retry_after: str | None,
                                           expected: DeliveryStatus, after: float | None) -> None:
    grafana.force(status, path="/api/annotations", retry_after=retry_after)
    r = GrafanaAnnotationNotifier(client(grafana)).deliver(deploy_msg())
    assert r.status == expected and r.retry_after == after and str(status) in r.error
    assert grafana.annotations == {}


def test_timeouts_are_retried(grafana: FakeGrafana) -> None:
    grafana.delay(1.5)
    n = GrafanaAnnotationNotifier(GrafanaClient(grafana.url, TOKEN, timeout_s=0.5, retries=0))
    assert n.deliver(deploy_msg()).status == DeliveryStatus.RETRY


def test_bad_payload_fails_naming_the_field(grafana: FakeGrafana) -> None:
    msg = deploy_msg()
    msg.payload["at"] = "yesterday"
    r = GrafanaAnnotationNotifier(client(grafana)).deliver(msg)
    assert r.status == DeliveryStatus.FAILED and "'at'" in r.error and "epoch seconds" in r.error
    assert grafana.calls() == []


def test_outage_delays_annotations_but_loses_none(grafana: FakeGrafana) -> None:
    """A minimal outbox loop: RETRY keeps the message (with its ref) for the next pass."""
    n = GrafanaAnnotationNotifier(client(grafana))
    pending = [deploy_msg(1), incident_msg("open"), rollback_msg(), deploy_msg(2)]
    refs: dict[str, dict] = {}
    grafana.down()
    passes = 0
    while pending and passes < 5:
        if passes == 2:
            grafana.up()
        still: list[OutboxMessage] = []
        for m in pending:
            m.ref = refs.get(m.key, m.ref)
            r = n.deliver(m)
            m.attempts += 1
            if r.status == DeliveryStatus.RETRY:
                still.append(m)
            else:
                assert r.status == DeliveryStatus.DELIVERED, r.error
                refs[m.key] = r.ref
        pending, passes = still, passes + 1
        if passes == 3:
            pending.append(incident_msg("resolved", i=11))  # resolved after the outage: patches the region
    assert not pending
    texts = sorted(a["text"].split("\n")[0] for a in grafana.annotations.values())
    assert len(texts) == 4, texts
    incident = next(a for a in grafana.annotations.values() if "incident" in a["tags"])
    assert incident["timeEnd"] == 1_790_003_700_500


def test_a_lost_response_does_not_duplicate_the_annotation(grafana: FakeGrafana) -> None:
    n = GrafanaAnnotationNotifier(client(grafana))
    first = n.deliver(deploy_msg())
    assert first.status == DeliveryStatus.DELIVERED
    # The outbox never saw that result (crash before commit) and delivers again.
    again = n.deliver(deploy_msg(attempts=1))
    assert again.status == DeliveryStatus.DELIVERED and again.ref == first.ref
    assert len(grafana.annotations) == 1
