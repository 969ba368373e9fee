"""Issue 12, hostile input at the edges: every number checked where it comes in.

On the old code an integer beyond 64 bits in a path or a query was a 500 (the store's
driver raised OverflowError), a signed Slack click carrying a 25-digit id too; a feature
value of `Infinity`, `1e400`, 10^30 or a 1 followed by 400 zeros was accepted (202), and
a 400-digit timestamp was a 500. Now each is a 4xx naming the field.
"""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from alerts.slack_actions import parse_payload
from monitor.store import silences
from tests.unit.monitor.test_api import AUTH, MODEL, T0, build, samples_api
from tests.unit.monitor.test_slack_interactions import SECRET, click, signed

BIG = "9" * 25


@pytest.mark.parametrize("method, url, field", [
    ("GET", "/v1/incidents/9223372036854775808", "incident_id"),
    ("GET", f"/v1/incidents/{BIG}", "incident_id"),
    ("GET", f"/v1/audit?since_seq={BIG}", "since_seq"),
    ("GET", f"/v1/incidents?offset={BIG}", "offset"),
    ("GET", f"/v1/incidents?limit={BIG}", "limit"),
    ("POST", f"/v1/incidents/{BIG}/ack", "incident_id"),
    ("POST", f"/v1/incidents/{BIG}/silence", "incident_id"),
    ("GET", f"/v1/incidents/{BIG}/drift-report", "incident_id"),
])
def test_integers_beyond_64_bits_are_a_422_naming_the_field(tmp_path, monkeypatch, method, url, field):
    api = build(tmp_path, monkeypatch)
    body = {"duration_s": 60, "reason": "noisy"} if url.endswith("silence") else None
    r = api.client.request(method, url, headers=AUTH, json=body)
    assert r.status_code == 422, (r.status_code, r.text)
    assert [f["field"] for f in r.json()["fields"]] == [f"{'path' if 'incidents/9' in url else 'query'}.{field}"]


def test_the_largest_64_bit_id_is_a_plain_404(tmp_path, monkeypatch):
    api = build(tmp_path, monkeypatch)
    assert api.client.get(f"/v1/incidents/{2**63 - 1}").status_code == 404
    assert api.client.get(f"/v1/audit?since_seq={2**63 - 1}").json()["items"] == []
    assert api.client.get(f"/v1/incidents?offset={2**63 - 1}").json()["items"] == []


@pytest.mark.parametrize("raw_id", [BIG, "9223372036854775808", "0", "-3", "1_000", " 7", "٣"])
def test_a_slack_value_with_an_id_out_of_range_is_refused_naming_the_value(raw_id):
    payload = click("ack", 1)
    payload["actions"][0]["value"] = f"{MODEL}:{raw_id}"
    with pytest.raises(ValueError, match=r"payload\.actions\[0\]\.value: incident id must be an integer in 1\.\."):
        parse_payload(payload)


def test_a_signed_slack_click_with_a_25_digit_id_is_a_400(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_TEST_SECRET", SECRET)
    api = build(tmp_path, monkeypatch, slack={"signing_secret": "${SLACK_TEST_SECRET}"})
    payload = click("ack", 1)
    payload["actions"][0]["value"] = f"{MODEL}:{BIG}"
    body, headers = signed(payload)
    r = api.client.post("/v1/slack/actions", content=body, headers=headers)
    assert r.status_code == 400 and "payload.actions[0].value" in r.json()["error"]


# ----------------------------------------------------------------------------- samples
def post_raw(api: Any, records_json: str) -> Any:
    raw = f'{{"model": "{MODEL}", "records": {records_json}}}'
    return api.client.post("/v1/samples", content=raw.encode(), headers={**AUTH, "Content-Type": "application/json"})


@pytest.mark.parametrize("field, value, words", [
    ("user_age", "Infinity", "finite number"),
    ("user_age", "-Infinity", "finite number"),
    ("user_age", "NaN", "finite number"),
    ("user_age", "1e400", "finite number"),
    ("user_age", "1" + "0" * 400, "an integer of about 401 digits"),
    ("user_age", "1" + "0" * 30, "2^53"),
    ("score", "-9007199254740993", "2^53"),
    ("score", "1e300", "2^53"),
    ("device", "1e400", "finite number"),  # a categorical field: still no infinity
    ("device", '{"os": "ios"}', "a string, number, boolean or null"),
    ("device", "[1, 2]", "a string, number, boolean or null"),
    ("timestamp", "1" + "0" * 400, "RFC3339 or epoch seconds"),
    ("timestamp", "1e400", "RFC3339 or epoch seconds"),
    ("timestamp", "-5", "between 1970 and 9999"),
    ("timestamp", "1e30", "between 1970 and 9999"),
])
def test_non_finite_and_out_of_range_values_are_refused_naming_the_field(tmp_path, monkeypatch, field, value,
                                                                           words):
    api = samples_api(tmp_path, monkeypatch)
    good = {"timestamp": T0, "user_age": 30, "device": "ios", "score": 0.5}
    bad = json.dumps({**good, field: "__VALUE__"}).replace('"__VALUE__"', value)
    r = post_raw(api, f"[{json.dumps(good)}, {bad}]")
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["fields"]] == [f"records[1].{field}"]
    assert words in r.json()["fields"][0]["message"]
    assert len(r.json()["fields"][0]["message"]) < 200, "a 400-digit number is not quoted whole"
    assert api.vigil.store.samples(MODEL, 0, T0 + 1) == [], "all or nothing"


def test_numbers_up_to_2_pow_53_are_kept_exactly(tmp_path, monkeypatch):
    api = samples_api(tmp_path, monkeypatch)
    r = post_raw(api, f'[{{"timestamp": {T0}, "user_age": 9007199254740992, "score": -9007199254740992.0}}]')
    assert r.status_code == 202, r.text
    assert api.vigil.store.samples(MODEL, 0, T0 + 1)[0][1] == {"user_age": 2**53, "score": -(2.0**53)}


def test_a_record_without_a_timestamp_is_refused_and_the_schema_says_it_is_required(tmp_path, monkeypatch):
    """schemathesis sent `records: [{}]`, valid by the old schema, and got a 422: now the
    schema says what the endpoint enforces."""
    api = samples_api(tmp_path, monkeypatch)
    r = post_raw(api, "[{}]")
    assert r.status_code == 422 and r.json()["fields"] == [
        {"field": "records[0].timestamp", "message": "required timestamp is missing"}]
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    record = schemas["SamplesRequest"]["properties"]["records"]["items"]
    assert record["required"] == ["timestamp"]
    number = record["additionalProperties"]["anyOf"][0]
    assert number == {"type": "number", "minimum": -(2**53), "maximum": 2**53}


@pytest.mark.parametrize("raw, why", [
    ('{"model": "recommender", "records": [{"timestamp": 1800000000, "x": 1' + "0" * 5000 + "}]}",
     "a number of more than 4300 digits"),
    ('{"model": "recommender", "records": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "JSON nested too deeply (arrays or objects within each other)"),
    (b'{"model": "recommender\xff", "records": []}', "not UTF-8 text"),
])
def test_a_body_the_json_parser_refuses_is_a_400_naming_the_body_and_why(tmp_path, monkeypatch, raw, why):
    """Such bodies were already a 400, but in FastAPI's `{detail}` shape, not `{error}`;
    then `{"error": "There was an error parsing the body"}`, which said neither where nor what."""
    api = samples_api(tmp_path, monkeypatch)
    content = raw if isinstance(raw, bytes) else raw.encode()
    r = api.client.post("/v1/samples", content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": f"the body could not be parsed: {why}; expected a JSON "
                                                          "object", "fields": [{"field": "body", "message": why}]}


@pytest.mark.parametrize("url, body, field", [
    (f"/v1/models/{MODEL}/rollback", {"reason": "ctr\u0000dropped", "dry_run": True}, "reason"),
    ("/v1/silences", {"matchers": ['model="recommender"'], "comment": "OPS-42\u0000", "duration": "1h"}, "comment"),
    ("/v1/silences", {"matchers": ['model="recommender"'], "comment": "OPS-42", "duration": "1h",
                      "created_by": "olga\u0000"}, "created_by"),
])
def test_a_nul_character_in_stored_text_is_a_422_naming_the_field(tmp_path, monkeypatch, url, body, field):
    """PostgreSQL's text columns cannot hold NUL: on a PostgreSQL store (every multi-replica
    deployment) these were a 500 from the driver, while SQLite stored them. Both refuse
    them now, naming the field."""
    api = build(tmp_path, monkeypatch)
    api.deploy("2", T0)
    r = api.client.post(url, headers=AUTH, json=body)
    assert r.status_code == 422, (r.status_code, r.text)
    assert r.json()["fields"] == [{"field": field, "message": "must not contain NUL characters (\\u0000)"}]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_json_sent_without_the_json_content_type_says_so(tmp_path, monkeypatch, content_type):
    """The README's own `curl -d '{...}'` (curl sends application/x-www-form-urlencoded) got
    a 422 "body: Input should be a valid dictionary or object to extract fields from" for
    a body that is a valid object: nothing said the Content-Type was the trouble."""
    api = build(tmp_path, monkeypatch)
    body = json.dumps({"matchers": ['model="recommender"'], "duration": "2h", "comment": "OPS-42"}).encode()
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    r = api.client.post("/v1/silences", content=body, headers=headers)
    assert r.status_code == 422
    [problem] = r.json()["fields"]
    assert problem["field"] == "body" and "Content-Type: application/json" in problem["message"]
    assert (content_type or "none") in problem["message"]


@pytest.mark.parametrize("raw, field", [
    (b'"starts_at": NaN, "duration": "1h"', "starts_at"),
    (b'"ends_at": NaN', "ends_at"),
    (b'"duration": NaN', "duration"),
])
def test_a_silence_with_a_nan_time_is_a_422_not_a_silence_without_end(tmp_path, monkeypatch, raw, field):
    """JSON's NaN (Python reads it) passed every check, since NaN compares false both ways:
    on SQLite a 500, on PostgreSQL (where NaN sorts above every number) a 201 for a silence
    with `ends_at: null` that stayed active for ever, past the 366-day limit."""
    api = build(tmp_path, monkeypatch)
    body = b'{"matchers": ["model=\\"recommender\\""], "comment": "OPS-42", ' + raw + b"}"
    r = api.client.post("/v1/silences", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422, (r.status_code, r.text)
    [problem] = r.json()["fields"]
    assert problem["field"] == field and "finite" in problem["message"]
    assert api.client.get("/v1/silences").json()["total"] == 0


def test_epoch_milliseconds_written_as_text_are_read_like_the_number(tmp_path, monkeypatch):
    """Epoch ms/µs/ns are told apart by size (README), but only for JSON numbers: a logger
    that writes the time as text ("1795000000000", Java's String.valueOf(currentTimeMillis))
    had every record refused as a time after the year 9999."""
    api = samples_api(tmp_path, monkeypatch)
    seconds = int(T0)
    records = [{"timestamp": text, "user_age": 31} for text in
               (str(seconds), str(seconds * 1000), str(seconds * 1_000_000), str(seconds * 1_000_000_000))]
    r = api.post("/v1/samples", {"model": MODEL, "records": records})
    assert r.status_code == 202, r.text
    assert [ts for ts, _ in api.vigil.store.samples(MODEL, T0 - 1, T0 + 1)] == [T0] * 4


@pytest.mark.parametrize("duration, words", [("0s", "expected a duration above 0"), (-3600, "non-negative"),
                                             ("400d", "at most 366 days")])
def test_a_bad_silence_duration_is_named_as_the_duration(tmp_path, monkeypatch, duration, words):
    """A silence given a `duration` that is 0, negative or too long was refused naming
    `ends_at`, a field the request did not have."""
    api = build(tmp_path, monkeypatch)
    r = api.client.post("/v1/silences", headers=AUTH, json={"matchers": ['model="recommender"'],
                                                            "comment": "OPS-42", "duration": duration})
    assert r.status_code == 422, (r.status_code, r.text)
    [problem] = r.json()["fields"]
    assert problem["field"] == "duration" and words in problem["message"], problem


@pytest.mark.parametrize("signature", ["v0=" + "\u00e9" * 64, "v0=\u00ff", "\u00e9"])
def test_a_slack_signature_with_non_ascii_bytes_is_a_401_not_a_500(tmp_path, monkeypatch, signature):
    """Anyone on the network, no secret needed: a current timestamp and a signature header
    with a byte above 0x7f (read as latin-1) made the HMAC comparison raise TypeError, a 500
    and a stack trace in the log per request."""
    monkeypatch.setenv("SLACK_TEST_SECRET", SECRET)
    api = build(tmp_path, monkeypatch, slack={"signing_secret": "${SLACK_TEST_SECRET}"})
    body, headers = signed(click("ack", 1))
    headers_raw: dict[str, Any] = {**headers, "X-Slack-Signature": signature.encode("latin-1")}
    r = api.anon.post("/v1/slack/actions", content=body, headers=headers_raw)
    assert r.status_code == 401, (r.status_code, r.text)
    assert "X-Slack-Signature" in r.json()["error"]


@pytest.mark.parametrize("matcher, said", [
    ('cause=~"(?!gpu).*"', "invalid perl operator: (?!"),
    ({"name": "kinds", "value": "(kpi_drop),\\1", "isRegex": True}, "invalid escape sequence: \\1")])
def test_a_silence_regex_in_python_only_syntax_is_a_422_naming_the_matcher_and_re2(tmp_path, monkeypatch, matcher,
                                                                                    said):
    """Matchers are RE2's, as Alertmanager's: a lookahead or a backreference was a silence
    Alertmanager would refuse, and the engine that ran it backtracks."""
    api = build(tmp_path, monkeypatch)
    r = api.client.post("/v1/silences", headers=AUTH,
                        json={"matchers": ['model="recommender"', matcher], "comment": "OPS-42", "duration": "1h"})
    assert r.status_code == 422, r.text
    [problem] = r.json()["fields"]
    assert problem["field"] == "matchers[1]", problem
    assert "RE2 syntax, as Alertmanager" in problem["message"] and said in problem["message"], problem


@pytest.mark.timeout(60)
def test_a_silence_regex_that_backtracks_in_python_is_made_and_matches_at_once(tmp_path, monkeypatch):
    """`(.*)*x` was refused by a heuristic (Python's engine took hours on a 40-character
    label), which also refused safe nested repeats; RE2 is linear, so it is a silence like
    any other, and the cycle checks it against a 10,000-character cause at once."""
    api = build(tmp_path, monkeypatch)
    r = api.client.post("/v1/silences", headers=AUTH,
                        json={"matchers": ['model="recommender"', 'cause=~"(.*)*x"',
                                           {"name": "kinds", "value": "([a-z_]+,?)+", "isRegex": True}],
                              "comment": "OPS-42", "duration": "1h"})
    assert r.status_code == 201, r.text
    with api.vigil.store.tx() as s:
        [made] = silences.live(s, time.time())
    start = time.perf_counter()
    assert not made.mutes({"model": "recommender", "cause": "a" * 10_000, "kinds": "kpi_drop"}, time.time())
    assert made.mutes({"model": "recommender", "cause": "a" * 10_000 + "x", "kinds": "kpi_drop"}, time.time())
    assert time.perf_counter() - start < 1.0


def test_a_silence_stored_in_python_syntax_by_an_older_vigil_is_listed_with_its_problem(tmp_path, monkeypatch):
    """Made before Vigil used RE2, it neither fails the listing nor vanishes from it: it is
    listed, with what is wrong and what to do, and still mutes what it was made for."""
    api = build(tmp_path, monkeypatch)
    now = time.time()
    with api.vigil.store.tx() as s:
        s.add(silences.SilenceRow(matchers=[{"name": "model", "value": "(?!canary-).*", "isRegex": True,
                                             "isEqual": True}], starts_at=now - 60, ends_at=now + 3600,
                                  created_by="olga", comment="OPS-7", created_at=now - 60, updated_at=now - 60))
    r = api.client.get("/v1/silences?state=active", headers=AUTH)
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["matchers"][0]["value"] == "(?!canary-).*"
    assert item["problem"].startswith("matchers[0]: invalid regular expression") and "RE2" in item["problem"]
    with api.vigil.store.tx() as s:
        [legacy] = silences.live(s, time.time())
    assert legacy.mutes({"model": "recommender"}, time.time())
    assert not legacy.mutes({"model": "canary-recommender"}, time.time())
