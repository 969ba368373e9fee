"""`/vigil silence add|list|expire` end to end: signed slash-command forms posted to the
Slack endpoint (as Slack sends them), answered at once with an ephemeral message, acting
on the same silences as the API (listed by GET /v1/silences, audited under the Slack
user), for the people the config names; a slow answer follows through response_url."""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from alerts.slack_commands import CommandError, parse_silence_text
from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import MODEL, model_config
from tests.unit.monitor.test_api import Api, build
from tests.unit.monitor.test_slack_interactions import ALICE, BOT, MALLORY, SECRET

BOB = "U0BOB0001"  # may press the model's buttons, is no operator


def form(text: str, user: str = ALICE, name: str = "alice", response_url: str = "") -> dict[str, str]:
    return {"token": "deprecated-verification-token", "team_id": "T0FAKE0001", "team_domain": "acme",
            "channel_id": "C0RECSYS01", "channel_name": "recsys-owners", "user_id": user, "user_name": name,
            "command": "/vigil", "text": text, "api_app_id": "A0VIGIL001", "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": "13345224609.738474920.8088930838d88f008e0"}


def signed_form(fields: dict[str, str], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = urlencode(fields).encode()
    ts = int(time.time())
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig,
                  "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=BOT) as fake:
        yield fake


def setup(tmp_path, monkeypatch, slack: FakeSlack, actors: dict[str, Any] | None = None) -> Api:
    return build_with(tmp_path, monkeypatch, slack, [(MODEL, {"users": [BOB]})], actors)


def build_with(tmp_path, monkeypatch, slack: FakeSlack, models: list[tuple[str, dict[str, Any] | None]],
               actors: dict[str, Any] | None = None) -> Api:
    """Vigil with ALICE (or `actors`) as Slack's operators and `models`, each (name, its slack_actors)."""
    monkeypatch.setenv("SLACK_TEST_SECRET", SECRET)
    monkeypatch.setenv("SLACK_TEST_BOT", BOT)
    section: dict[str, Any] = {"signing_secret": "${SLACK_TEST_SECRET}", "bot_token": "${SLACK_TEST_BOT}",
                               "base_url": slack.base_url, "timeout_s": 5,
                               "actors": actors if actors is not None else {"users": [ALICE]}}
    return build(tmp_path, monkeypatch, slack=section,
                 models=[model_config(name, **({"slack_actors": a} if a else {})) for name, a in models])


def command(api: Api, text: str, **kw: Any) -> dict[str, Any]:
    body, headers = signed_form(form(text, **kw))
    r = api.anon.post("/v1/slack/actions", content=body, headers=headers)
    assert api.app.state.slack_desk.worker.wait_idle(10)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["response_type"] == "ephemeral"
    return out


def audit(api: Api) -> list[dict[str, Any]]:
    return api.client.get("/v1/audit", params={"limit": 1000}).json()["items"]


def test_an_operator_adds_lists_and_expires_a_silence_seen_by_the_api_and_audited(tmp_path, monkeypatch, slack):
    api = setup(tmp_path, monkeypatch, slack)
    added = command(api, 'silence add model="recommender" severity=~"warning|critical" for 2h -- OPS-42 reindex')
    assert added["text"].startswith("Silence 1 added: `model=\"recommender\", severity=~\"warning|critical\"`")
    assert "(2 h)" in added["text"] and "OPS-42 reindex" in added["text"]
    [made] = api.client.get("/v1/silences").json()["items"]
    assert made["created_by"] == f"slack:{ALICE} (alice)" and made["comment"] == "OPS-42 reindex"
    assert made["ends_at"] - made["starts_at"] == 7200 and made["status"]["state"] == "active"

    listed = command(api, "silence list", user=BOB, name="bob")  # anyone who may press a button
    assert listed["text"].splitlines()[0] == "1 active silence:"
    assert "*1* active" in listed["text"] and "OPS-42 reindex" in listed["text"]

    expired = command(api, "silence expire 1")
    assert expired["text"].startswith("Silence 1 expired")
    assert api.client.get("/v1/silences", params={"state": "expired"}).json()["total"] == 1
    assert command(api, "silence list")["text"] == "No active silences."
    assert "ended" in command(api, "silence list all")["text"]
    assert command(api, "silence expire 99")["text"].startswith("Silence 99 not found")
    mine = [e["action"] for e in audit(api) if e["actor"] == f"slack:{ALICE} (alice)"]
    assert mine == ["silence.create", "silence.expire"]


def test_add_expire_for_operators_and_model_actors_list_for_button_people_refusal_audited(tmp_path, monkeypatch, slack):
    api = setup(tmp_path, monkeypatch, slack)
    refused = command(api, 'silence add model="recommender"', user=MALLORY, name="mallory")
    assert refused["text"] == (f"You may not add silences from Slack: that needs <@{ALICE}> "
                               "(or, for a model's own silences, one of its slack_actors).")
    assert api.client.get("/v1/silences").json()["total"] == 0
    assert command(api, "silence list", user=MALLORY, name="mallory")["text"].startswith(
        "You may not list silences from Slack")
    command(api, 'silence add severity="critical"')  # mutes every model: not Bob's to expire
    assert command(api, "silence expire 1", user=BOB, name="bob")["text"].startswith("You may only expire")
    assert api.client.get("/v1/silences", params={"state": "active"}).json()["total"] == 1
    refusals = [(e["actor"], e["target"], e["detail"]["command"]) for e in audit(api) if e["action"] == "slack.refused"]
    assert refusals == [(f"slack:{MALLORY} (mallory)", "silences", "/vigil silence add"),
                        (f"slack:{MALLORY} (mallory)", "silences", "/vigil silence list"),
                        (f"slack:{BOB} (bob)", "silences", "/vigil silence expire")]


def test_operators_may_be_a_user_group(tmp_path, monkeypatch, slack):
    slack.add_usergroup("S0ONCALL1", [MALLORY])
    api = setup(tmp_path, monkeypatch, slack, actors={"groups": ["S0ONCALL1"]})
    assert command(api, 'silence add model="recommender" for 30m', user=MALLORY,
                   name="mallory")["text"].startswith("Silence 1 added")


def test_a_bad_matcher_is_named_and_nothing_is_made(tmp_path, monkeypatch, slack):
    api = setup(tmp_path, monkeypatch, slack)
    bad = command(api, 'silence add model="recommender" severity=~"warn(" -- typo')
    assert bad["text"].startswith('Cannot add that silence: matcher 2 `severity=~"warn("`:'), bad["text"]
    assert "matcher 1" in command(api, "silence add model")["text"]
    assert command(api, 'silence add model="recommender" for soon')["text"].startswith(
        "Cannot add that silence: `for`:")
    assert command(api, 'silence add model=~".*"')["text"].startswith(
        "Cannot add that silence: the matchers: these matchers also match an alert with no labels")
    assert "`for`: a silence lasts at most 366 days" in command(api, 'silence add model="recommender" for 400d')["text"]
    assert "expected add, list or expire" in command(api, "silence mute recommender")["text"]
    assert api.client.get("/v1/silences").json()["total"] == 0
    assert not [e for e in audit(api) if e["action"] == "silence.create"]


def test_a_forged_or_replayed_command_does_nothing(tmp_path, monkeypatch, slack):
    api = setup(tmp_path, monkeypatch, slack)
    body, headers = signed_form(form('silence add model="recommender"'), secret="not-the-secret")
    assert api.anon.post("/v1/slack/actions", content=body, headers=headers).status_code == 401
    body, headers = signed_form(form('silence add model="recommender"'))
    first = api.anon.post("/v1/slack/actions", content=body, headers=headers)
    again = api.anon.post("/v1/slack/actions", content=body, headers=headers)
    assert api.app.state.slack_desk.worker.wait_idle(10)
    assert first.json()["text"].startswith("Silence 1 added")
    assert again.json() == {"response_type": "ephemeral", "text": "This command was already handled."}
    assert api.client.get("/v1/silences").json()["total"] == 1


def test_a_slow_answer_follows_through_response_url(tmp_path, monkeypatch, slack):
    from monitor.api import slack_silences

    real = slack_silences.run

    def slow(*args: Any) -> str:  # as if a user group's members took 3 s to read
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(slack_silences, "run", slow)
    monkeypatch.setattr("monitor.api.slack.COMMAND_BUDGET_S", 0.1)
    api = setup(tmp_path, monkeypatch, slack)
    url = slack.response_url()
    first = command(api, 'silence add model="recommender"', response_url=url)
    assert first["text"] == "On it: silence add; the result follows here."
    [reply] = slack.responses(url)
    assert reply["response_type"] == "ephemeral" and reply["text"].startswith("Silence 1 added")
    assert "from Slack by alice" in reply["text"], "no comment given: who made it from where"


def test_the_text_is_read_as_people_type_it():
    got = parse_silence_text("silence add model=\u201crecommender\u201d cause=~\"gpu node.*\" for 90m -- A &amp; B")
    assert got.matchers == ('model="recommender"', 'cause=~"gpu node.*"')
    assert (got.duration, got.comment) == ("90m", "A & B")
    assert parse_silence_text("silence add entity=&lt;none&gt;").matchers == ("entity=<none>",)
    assert parse_silence_text('silence add kind="a -- b" -- c').matchers == ('kind="a -- b"',)
    assert parse_silence_text("").verb == "help"
    assert parse_silence_text("silence list expired").state == "expired"
    for text, says in (("silence expire abc", "expected a silence id"), ("silence list old", "expected one of"),
                       ("silence add for", "`for` needs a duration"), ("silence add -- why", "at least one matcher"),
                       ("rollback recommender", "unknown command")):
        with pytest.raises(CommandError, match=says):
            parse_silence_text(text)


def test_a_command_that_breaks_answers_that_it_failed_not_on_it(tmp_path, monkeypatch, slack):
    """The job raised (the store unreachable): the HTTP answer waited out its budget, said
    "On it ... the result follows here", and no result ever followed."""
    from monitor import silence_ops

    api = setup(tmp_path, monkeypatch, slack)

    def store_down(*_a: Any, **_k: Any) -> Any:
        raise ConnectionError("could not connect to server")

    monkeypatch.setattr(silence_ops, "listing", store_down)
    url = slack.response_url()
    out = command(api, "silence list", response_url=url)
    assert "failed" in out["text"] and "silence list" in out["text"] and "On it" not in out["text"]
    assert slack.responses(url) == []


def test_a_listed_silence_shows_its_comment_as_written_not_as_slack_markup(tmp_path, monkeypatch, slack):
    """Comments and creators come from whoever made the silence (the API, the CLI): they
    went into the mrkdwn reply raw, so `<https://evil.example|runbook>` showed as a link
    named "runbook", `<!channel>` as an @channel, and `p99 <200ms` was cut."""
    api = setup(tmp_path, monkeypatch, slack)
    r = api.client.post("/v1/silences", json={"matchers": ['feature=~"a<b.*"'], "duration": "2h",
                                              "comment": "<!channel> see <https://evil.example|runbook> & p99 <200ms"})
    assert r.status_code in (200, 201), r.text
    listed = command(api, "silence list", user=BOB, name="bob")["text"]
    assert "<!channel>" not in listed and "<https://evil" not in listed and "a<b" not in listed
    assert "&lt;!channel&gt; see &lt;https://evil.example|runbook&gt; &amp; p99 &lt;200ms" in listed
    added = command(api, 'silence add model="recommender" for 1h -- <!here> OPS-42')["text"]
    assert "<!here>" not in added and "&lt;!here&gt; OPS-42" in added


def test_a_phones_dash_starts_the_comment_like_two_hyphens():
    """Phones and macOS's smart punctuation turn `--` into an em dash as it is typed (as they
    turn quotes curly): the dash and the comment's words were read as matchers, and the
    silence was refused with "matcher 2 `—`"."""
    for dash in ("\u2014", "\u2013"):
        got = parse_silence_text(f'silence add model="recommender" for 2h {dash} OPS-42 reindex')
        assert got.matchers == ('model="recommender"',) and got.comment == "OPS-42 reindex"
    assert parse_silence_text('silence add kind="a \u2014 b" -- c').matchers == ('kind="a \u2014 b"',)


def test_a_silence_stored_in_python_regex_syntax_is_listed_in_slack_with_its_problem(tmp_path, monkeypatch, slack):
    """A silence an older Vigil stored in Python's regex syntax (RE2 refuses it) is listed,
    not dropped from the list nor failing it, and says what is wrong and what to do."""
    from monitor.store import silences

    api = setup(tmp_path, monkeypatch, slack)
    now = time.time()
    with api.vigil.store.tx() as s:
        s.add(silences.SilenceRow(matchers=[{"name": "model", "value": "(?!canary-).*", "isRegex": True,
                                             "isEqual": True}], starts_at=now - 60, ends_at=now + 3600,
                                  created_by="olga", comment="OPS-7", created_at=now - 60, updated_at=now - 60))
    text = command(api, "silence list")["text"]
    assert text.startswith("1 active silence:") and "OPS-7" in text, text
    assert "matchers[0]: invalid regular expression" in text and "make it again in RE2 syntax" in text, text


def test_a_models_own_slack_actor_adds_and_expires_silences_confined_to_that_model(tmp_path, monkeypatch, slack):
    """A model's `slack_actors` press its buttons; `/vigil silence add|expire` was the global
    operators' only, so the model's team had to ask them. A silence is now theirs to add and
    expire when its matchers confine it to their models, by the API's rule for a scoped token;
    one that could mute another model (or no model's alerts) is still refused, and audited."""
    slack.add_usergroup("S0RANKERS", [MALLORY])
    api = build_with(tmp_path, monkeypatch, slack, models=[
        ("recommender", {"users": [BOB]}), ("ranker", {"groups": ["S0RANKERS"]}), ("churn", None)])
    added = command(api, 'silence add model="recommender" severity="warning" for 1h -- BOB-1', user=BOB, name="bob")
    assert added["text"].startswith("Silence 1 added"), added["text"]
    assert command(api, 'silence add model=~"ranker" for 1h', user=MALLORY, name="mallory")["text"].startswith(
        "Silence 2 added")

    for text in ('silence add severity="critical"', 'silence add model="ranker"', 'silence add model=~"rec.*"'):
        refused = command(api, text, user=BOB, name="bob")["text"]
        assert refused.startswith("You may only add silences confined to the models whose slack_actors list you "
                                  "(recommender):"), refused
    assert "names a model outside recommender" in command(api, 'silence add model="churn"', user=BOB,
                                                          name="bob")["text"]
    command(api, 'silence add model=~"churn|ranker"')  # silence 3, by an operator
    assert command(api, "silence expire 3", user=MALLORY, name="mallory")["text"].startswith(
        "You may only expire silences confined to")
    assert command(api, "silence expire 1", user=BOB, name="bob")["text"].startswith("Silence 1 expired")
    assert api.client.get("/v1/silences", params={"state": "active"}).json()["total"] == 2
    refusals = [e["detail"]["models"] for e in audit(api)
                if e["action"] == "slack.refused" and e["actor"] == f"slack:{BOB} (bob)"]
    assert refusals == [["recommender"]] * 4
