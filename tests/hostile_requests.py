"""Hand-made hostile requests for the API fuzz test (tests/integration/test_api_fuzz.py):
what a generator rarely thinks of. Each is (method, url, httpx keyword arguments)."""
from __future__ import annotations

from typing import Any

Request = tuple[str, str, dict[str, Any]]

HUGE = "9" * 25
JSON = {"Content-Type": "application/json"}
MODEL = "recommender"


def _bodies() -> list[bytes]:
    return [
        b"[" * 100_000,                                   # deep JSON
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b'{"reason": NaN, "duration_s": Infinity}',
        b'{"reason": "ctr dropped", "duration_s": -Infinity}',
        b'{"reason": "ctr dropped", "duration_s": 1e400}',
        b'{"reason": "ctr dropped", "duration_s": ' + HUGE.encode() + b"}",
        b'{"reason": "' + b"r" * 1_000_000 + b'"}',         # long string
        b"\xff\xfe\xfd\x00\x80",                           # bad UTF-8
        b'{"reason": "\xed\xa0\x80 lone surrogate"}',
        b'{"model": "' + MODEL.encode() + b'", "records": [{"timestamp": 1e400, "user_age": NaN}]}',
        b'{"model": "' + MODEL.encode() + b'", "records": [{"timestamp": ' + HUGE.encode() + b"}]}",
        b'{"model": "' + MODEL.encode() + b'", "records": [{}]}',
        b'{"model": "' + MODEL.encode() + b'", "records": [' + b'{"timestamp": 1, "user_age": 1},' * 2000
        + b'{"timestamp": 1}]}',
        b'{"model": [], "records": {}}',
        b"null", b"", b"0", b'"string"', b"{}", b'{"to_version": "' + HUGE.encode() + b'", "reason": "abc"}',
    ]


def hostile_requests(auth: dict[str, str]) -> list[Request]:
    reads = [f"/v1/incidents/{HUGE}", "/v1/incidents/-1", "/v1/incidents/0", "/v1/incidents/1e400",
             "/v1/incidents/NaN", f"/v1/incidents?offset={HUGE}", f"/v1/incidents?limit={HUGE}",
             "/v1/incidents?limit=Infinity", "/v1/incidents?model=%FF%FE", "/v1/incidents?status=%00",
             "/v1/incidents?model=" + "m" * 8000, f"/v1/audit?since_seq={HUGE}", "/v1/audit?since_seq=-1",
             f"/v1/incidents/{HUGE}/drift-report", "/v1/incidents/1/drift-report", "/v1/%FF", "/" + "x" * 8000,
             "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/docs/assets/swagger-ui.css",
             "/docs/assets/..%2F..%2Fetc%2Fpasswd"]
    out: list[Request] = [("GET", url, {"headers": auth}) for url in reads]
    out += [("GET", "/v1/incidents", {"headers": {"Authorization": "Bearer " + "t" * 10_000}}),
            ("GET", "/v1/incidents", {"headers": {"Authorization": b"Basic \xff\xfe"}}),
            ("DELETE", "/v1/incidents", {"headers": auth}), ("PUT", "/v1/samples", {"headers": auth})]
    writes = [f"/v1/incidents/{HUGE}/ack", f"/v1/incidents/{HUGE}/silence", "/v1/incidents/1/silence",
              "/v1/incidents/1/ack", f"/v1/models/{MODEL}/rollback", "/v1/models/%FF/rollback",
              "/v1/models/" + "n" * 5000 + "/rollback", "/v1/samples", "/v1/slack/actions"]
    for url in writes:
        for body in _bodies():
            out.append(("POST", url, {"headers": {**auth, **JSON}, "content": body}))
        for content_type in ("text/plain", "application/xml", "multipart/form-data; boundary=x",
                             "application/x-www-form-urlencoded", "application/json; charset=latin-1"):
            out.append(("POST", url, {"headers": {**auth, "Content-Type": content_type},
                                      "content": b"payload=%7B%22type%22%3A1%7D&\xff"}))
    slack = {"X-Slack-Request-Timestamp": HUGE, "X-Slack-Signature": "v0=" + "0" * 64,
             "Content-Type": "application/x-www-form-urlencoded"}
    out.append(("POST", "/v1/slack/actions", {"headers": slack, "content": b"payload=%7B%7D"}))
    out.append(("POST", "/v1/incidents/1/ack", {"headers": {**auth, "Idempotency-Key": "k" * 10_000}}))
    return out
