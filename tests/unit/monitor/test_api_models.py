"""GET /v1/models and /v1/models/{name}, and the one list envelope ({items, total, next})
of every list the API returns."""
from __future__ import annotations

import pytest

from tests.helpers_vigil import MODEL, T0
from tests.unit.monitor.test_api import api  # noqa: F401  (the fixture)


def test_models_list_what_each_serves_its_open_incident_and_drift_now(api):  # noqa: F811
    report = api.vigil.run_cycle(MODEL, T0)
    page = api.client.get("/v1/models").json()
    assert page["total"] == len(api.vigil.config.models) and page["next"] is None
    m = next(x for x in page["items"] if x["name"] == MODEL)
    assert m["serving_version"] == api.alias() and m["alias"] == "champion"
    assert m["open_incident"]["id"] == report.incident_id and m["open_incident"]["severity"] == report.severity
    assert m["last_cycle"]["at"] == T0 and m["last_cycle"]["step"] == report.step
    assert m["blind"] == report.blind


def test_models_answer_from_the_store_whoever_ran_the_cycle(api):  # noqa: F811
    from monitor.store.model_now import ModelNow, save_model_now

    save_model_now(api.vigil.store.tx, ModelNow(MODEL, T0, "opened", "warning", 0.2, ["loki: connection refused"],
                                                {"user_age": {"psi": 0.31, "ks": 0.12}, "city": {"js": float("nan")}}))
    m = api.client.get(f"/v1/models/{MODEL}").json()
    assert m["last_cycle"] == {"at": T0, "step": "opened", "severity": "warning", "duration_s": 0.2}
    assert m["blind"] == ["loki: connection refused"]
    assert m["drift"] == {"user_age": {"psi": 0.31, "ks": 0.12}, "city": {}}  # NaN is not a number to show
    policy = api.vigil.config.policy_for(api.vigil.config.model(MODEL))
    assert m["drift_thresholds"] == {"statistic": policy.drift_statistic, "warning": policy.drift_warning,
                                     "critical": policy.drift_critical}
    one = api.client.get(f"/v1/models/{MODEL}").json()
    assert one["name"] == MODEL and one["open_incident"] == m["open_incident"]


def test_drift_is_stored_compressed_and_a_row_written_before_still_answers(api):  # noqa: F811
    from sqlalchemy import text

    from monitor.store.model_now import ModelNow, ModelNowRow, save_model_now

    drift = {f"f{i:02d}": {"ks": 0.01 * i + 1e-9, "psi": 0.002 * i + 1e-9} for i in range(50)}
    save_model_now(api.vigil.store.tx, ModelNow(MODEL, T0, "quiet", None, 0.1, [], drift))
    with api.vigil.store.engine.connect() as c:
        legacy, size = c.execute(text("SELECT drift, length(drift_gz) FROM model_now")).one()
    assert legacy == "{}" and size < len(str(drift)) / 2
    assert api.client.get(f"/v1/models/{MODEL}").json()["drift"] == drift
    with api.vigil.store.tx() as s:  # as a Vigil before 0004 wrote it: JSON, no drift_gz
        row = s.get(ModelNowRow, MODEL)
        row.drift, row.drift_gz = {"user_age": {"psi": 0.31}}, None
    assert api.client.get(f"/v1/models/{MODEL}").json()["drift"] == {"user_age": {"psi": 0.31}}


def test_an_unknown_model_is_404_with_the_error_envelope_listing_the_known_ones(api):  # noqa: F811
    r = api.client.get("/v1/models/nope")
    assert r.status_code == 404
    body = r.json()
    assert "nope" in body["error"] and MODEL in body["error"]


def test_incidents_page_with_total_and_a_next_link_that_keeps_the_filters(api):  # noqa: F811
    from alerts.lifecycle import IncidentStatus
    from monitor.store.tables import IncidentRow

    with api.vigil.store.tx() as s:
        for i in range(5):
            s.add(IncidentRow(model=MODEL, status=IncidentStatus.RESOLVED, severity="warning", title=f"i{i}",
                              onset=T0 + i, opened_at=T0 + i, updated_at=T0 + i, resolved_at=T0 + i + 1,
                              fingerprint=f"f{i}", reasons=[], findings=[], causes=[]))
    seen: list[int] = []
    page = api.client.get("/v1/incidents", params={"limit": 2, "model": MODEL, "status": "resolved"}).json()
    assert page["total"] == 5
    while True:
        seen += [i["id"] for i in page["items"]]
        if page["next"] is None:
            break
        assert f"model={MODEL}" in page["next"] and "status=resolved" in page["next"] and "limit=2" in page["next"]
        page = api.client.get(page["next"].split("testserver", 1)[1]).json()
    assert len(seen) == 5 and len(set(seen)) == 5 and seen == sorted(seen, reverse=True)


def test_list_parameters_are_validated_naming_the_field(api):  # noqa: F811
    for url, field in (("/v1/incidents?limit=0", "limit"), ("/v1/incidents?offset=-1", "offset"),
                       ("/v1/models?limit=9999", "limit"), ("/v1/audit?limit=0", "limit")):
        r = api.client.get(url)
        assert r.status_code == 422, url
        assert [f["field"] for f in r.json()["fields"]] == [f"query.{field}"]


def test_audit_pages_by_cursor_in_the_same_envelope(api):  # noqa: F811
    for i in range(3):
        api.vigil.store.audit("alice", "test.entry", f"t{i}", {"i": i}, T0 + i)
    first = api.client.get("/v1/audit", params={"limit": 2}).json()
    assert {"items", "total", "next", "chain"} <= first.keys()
    assert len(first["items"]) == 2 and first["total"] >= 3
    path = first["next"].split("testserver", 1)[1]
    assert f"since_seq={first['items'][-1]['seq']}" in path
    rest = api.client.get(path).json()
    assert rest["items"][0]["seq"] == first["items"][-1]["seq"] + 1
    assert rest["total"] == first["total"] - 2


def _add_incidents(api, n: int, status: str, start: int = 0) -> None:  # noqa: F811
    from monitor.store.tables import IncidentRow

    with api.vigil.store.tx() as s:
        for i in range(start, start + n):
            s.add(IncidentRow(model=MODEL, status=status, severity="warning", title=f"i{i}", onset=T0 + i,
                              opened_at=T0 + i, updated_at=T0 + i, resolved_at=None, fingerprint=f"f{i}",
                              reasons=[], findings=[], causes=[]))


@pytest.mark.parametrize("meanwhile", ["opened", "resolved"])
def test_following_next_neither_repeats_nor_skips_while_incidents_open_and_resolve(api, meanwhile):  # noqa: F811
    """Newest first by offset, an incident opened between two pages pushed the list down
    one (the next page repeated the last one seen), and one resolved under `status=open`
    pulled it up one (an open incident was never shown). `next` is a cursor now."""
    from alerts.lifecycle import IncidentStatus
    from monitor.store.tables import IncidentRow

    _add_incidents(api, 6, IncidentStatus.OPEN)
    before = [i["id"] for i in api.client.get("/v1/incidents", params={"status": "open"}).json()["items"]]
    page = api.client.get("/v1/incidents", params={"limit": 2, "status": "open"}).json()
    seen = [i["id"] for i in page["items"]]
    if meanwhile == "opened":  # the newest now: it belongs before page 1, not in the pages after it
        _add_incidents(api, 1, IncidentStatus.OPEN, start=100)
    else:  # one already shown resolves
        with api.vigil.store.tx() as s:
            s.get(IncidentRow, seen[0]).status = IncidentStatus.RESOLVED
    while page["next"] is not None:
        page = api.client.get(page["next"].split("testserver", 1)[1]).json()
        seen += [i["id"] for i in page["items"]]
    assert seen == before, "each incident open when the listing began, once, newest first"


def test_incidents_of_a_model_removed_or_renamed_are_listed_by_its_name(api):  # noqa: F811
    """A model removed (or renamed) from vigil.yaml keeps its incidents, each readable by id,
    yet `GET /v1/incidents?model=<its old name>` said 404 "unknown model": its history could
    not be listed. A name with incidents is listed; one with none is still a 404 (a typo)."""
    from alerts.lifecycle import IncidentStatus
    from monitor.store.tables import IncidentRow

    with api.vigil.store.tx() as s:
        s.add(IncidentRow(model="fraud-old", status=IncidentStatus.RESOLVED, severity="warning", title="old",
                          onset=T0, opened_at=T0, updated_at=T0, resolved_at=T0 + 1,
                          fingerprint="f-old", reasons=["model removed from the configuration"], findings=[],
                          causes=[]))
    r = api.client.get("/v1/incidents", params={"model": "fraud-old"})
    assert r.status_code == 200, r.text
    assert [i["title"] for i in r.json()["items"]] == ["old"] and r.json()["total"] == 1
    nope = api.client.get("/v1/incidents", params={"model": "fraud-olde"})
    assert nope.status_code == 404 and MODEL in nope.json()["error"]
