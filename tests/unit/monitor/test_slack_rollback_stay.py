"""The Slack button "Roll back to v1" pressed when v1 already serves and is blamed (nothing to
move): the rollback API answers `noop` naming the blame ("v1 is serving and is blamed"); the
button's answer named neither the blame nor that nothing was moved."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import model_config
from tests.unit.monitor.test_api import MODEL, ROLLBACK, build
from tests.unit.monitor.test_slack_interactions import ALICE, BOT, SECRET, T0, click, press, setup


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=BOT) as fake:
        yield fake


def test_a_press_whose_version_is_blamed_and_serving_says_so_and_moves_nothing(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    url = slack.response_url()
    page = click("rollback", incident_id, url)  # the page's button: v2 back to v1
    # An admin rolled v2 back to v1, then forced v2 back (v1 lacks a fix): v1 is blamed now
    # (a rollback moved away from it); then someone set the alias to v1 by hand.
    assert api.post(ROLLBACK, {"reason": "v2 is bad"}).json()["status"] == "done"
    forced = api.post(ROLLBACK, {"reason": "v1 lacks the fix", "to_version": "2", "force": True})
    assert forced.json()["status"] == "done"
    api.deploy("1", T0 + 60)
    moves = list(api.registry.moves)
    press(api, page)
    told = slack.responses(url)[-1]["text"]
    assert api.registry.moves == moves and api.alias() == "1"
    assert "someone moved it since" not in told, told
    assert "v1 is serving and is blamed" in told and "nothing was moved" in told, told
    asked = api.post(ROLLBACK, {"reason": "make sure v1 serves", "to_version": "1"}).json()
    assert asked["status"] == "noop" and "v1 is serving and is blamed" in asked["detail"], asked
    assert "nothing was moved" in asked["detail"], asked  # the same words from the API


def test_a_press_whose_version_is_blamed_moves_no_layer_still_on_another_version(tmp_path, monkeypatch, slack):
    """As above with a second layer (a `production` alias) left on v2 when the champion alias was
    set back to v1 by hand: the press moved it to the blamed v1 without force, where the API
    refuses the same request (409). It is refused now, naming what serves; nothing moves."""
    monkeypatch.setenv("SLACK_TEST_SECRET", SECRET)
    monkeypatch.setenv("SLACK_TEST_BOT", BOT)
    section = {"signing_secret": "${SLACK_TEST_SECRET}", "bot_token": "${SLACK_TEST_BOT}",
               "base_url": slack.base_url, "timeout_s": 5, "actors": {"users": [ALICE]}}
    api = build(tmp_path, monkeypatch, slack=section, policy={"rollback": {"enabled": False}},
                models=[model_config(serving={"kind": "mlflow_alias", "alias": "production"})])
    api.registry.aliases[(MODEL, "production")] = "2"
    api.deploy("2", T0 - 900)
    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    assert incident_id is not None
    url = slack.response_url()
    page = click("rollback", incident_id, url)
    assert api.post(ROLLBACK, {"reason": "v2 is bad"}).json()["status"] == "done"
    assert api.post(ROLLBACK, {"reason": "v1 lacks the fix", "to_version": "2", "force": True}).json()["status"] \
        == "done"
    api.deploy("1", T0 + 60)  # the champion alias back to v1 by hand; production stays on v2
    press(api, page)
    told = slack.responses(url)[-1]["text"]
    assert api.registry.aliases[(MODEL, "production")] == "2", "moved to the blamed v1 without force"
    assert told.startswith("Rollback refused") and "serve v2, not v1" in told and "nothing moved" in told, told
    # A button cannot force: the answer says what can, not "needs force".
    assert "needs force" not in told, told
    assert f"vigil rollback {MODEL} --config FILE --to-version 1 --force --reason TEXT" in told, told
    assert f"POST /v1/models/{MODEL}/rollback" in told and "force=true" in told, told
    asked = api.post(ROLLBACK, {"reason": "make sure v1 serves", "to_version": "1"})
    assert asked.status_code == 409 and "needs force" in asked.json()["error"], asked.text  # the API's own words
