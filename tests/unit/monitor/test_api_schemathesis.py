"""schemathesis over every operation of /openapi.json, in process, with all its checks:
no server error, no status or content type the document does not list, every body
as documented, invalid requests refused and valid ones accepted (issue 12).

The cases carry the admin token (so every protected route runs, not just the 401), and
Slack's callback is signed with the configured secret over the exact bytes sent (so the
signed path runs; a generated payload is never a real button press, so it ends at 400).
Bounded: EXAMPLES per operation and generation mode, about a minute in all. A call may
take REQUEST_TIMEOUT_S, not schemathesis' 10 s: in process the server shares the test's
cores, and on a loaded machine one read once took longer (a hang still fails the test).
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.helpers_vigil import MODEL, T0
from tests.unit.monitor.test_api import AUTH, Api, build

EXAMPLES = 60
REQUEST_TIMEOUT_S = 60
SLACK_SECRET = "schemathesis-slack-secret-3e1f"
Finding = tuple[str, str, str]  # operation, mode, schemathesis' check titles
load_all_checks()
ALL_CHECKS = CHECKS.get_all()  # every check schemathesis has, not only those on by default
# Slack's payload is JSON inside a form field: no schema says what a real button press is,
# so a generated "valid" one is refused (400) by design. Every other check runs there too.
SLACK_CHECKS = [c for c in ALL_CHECKS if c is not positive_data_acceptance]
# A silence's validity is beyond a JSON schema: its regexes must compile, it must end after
# it starts and in the future, and its matchers must not match everything. A generated
# "valid" one is refused (422 naming the field) by design; every other check runs.
SEMANTIC_CHECKS = SLACK_CHECKS
SEMANTIC_BODIES = {("POST", "/v1/silences")}


def slack_call(api: Api, case: Case) -> Any:
    """Send the case with a valid Slack signature over its exact body."""
    body = case.body
    raw = urlencode(body).encode() if isinstance(body, dict) else str(body if body is not None else "").encode()
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    headers = {**{k: str(v) for k, v in (case.headers or {}).items()}, "X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"}
    return api.anon.post(case.formatted_path, content=raw, headers=headers, params=case.query)


def run_operation(api: Api, operation: Any, mode: GenerationMode, found: Counter[Finding],
                  examples: dict[Finding, str]) -> int:
    sent = 0

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def one(case: Case) -> None:
        nonlocal sent
        sent += 1
        # A generated header of the same name, in another case, would be sent next to ours.
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        try:
            if operation.path == "/v1/slack/actions":
                case.validate_response(slack_call(api, case), checks=SLACK_CHECKS)
            elif (operation.method.upper(), operation.path) in SEMANTIC_BODIES:
                case.call_and_validate(headers=AUTH, checks=SEMANTIC_CHECKS, timeout=REQUEST_TIMEOUT_S)
            else:
                case.call_and_validate(headers=AUTH, checks=ALL_CHECKS, timeout=REQUEST_TIMEOUT_S)
        except (Exception, BaseExceptionGroup) as e:  # collect every finding, not just the first
            text = str(e)
            key = (operation.label, mode.value, "; ".join(re.findall(r"- (ST\d+ [^\n]*)", text)) or text[:200])
            found[key] += 1
            examples.setdefault(key, text[:1500])

    with contextlib.suppress(Unsatisfiable):  # nothing to negate in an operation without parameters or body
        one()
    return sent


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_TEST_SECRET", SLACK_SECRET)
    api = build(tmp_path, monkeypatch, slack={"signing_secret": "${SLACK_TEST_SECRET}"})
    api.deploy("2", time.time() - 3600)
    api.vigil.run_cycle(MODEL, T0)  # an incident, so /v1/incidents/1 and its report exist
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    # The token is ours to give (below), not a parameter to generate or leave out.
    schema.config.generation.update(with_security_parameters=False)
    found: Counter[Finding] = Counter()
    examples: dict[Finding, str] = {}
    sent, operations = 0, 0
    for result in schema.get_all_operations():
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += run_operation(api, result.ok(), mode, found, examples)
    report = "\n\n".join(f"{n}x {k[0]} [{k[1]}] {k[2]}\n{examples[k]}" for k, n in found.items())
    assert operations >= 11 and sent > operations * EXAMPLES  # each ran, both modes where there is something to negate
    assert not found, f"{sum(found.values())} findings in {sent} cases:\n{report}"
