"""`POST /v1/slack/actions`: the buttons on Vigil's Slack messages (ack, silence,
rollback), and the `/vigil silence add|list|expire` slash command (its Request URL is
the same; a form with `command` and no `payload` is a slash command).

Slack wants a 200 within 3 s, so this route only checks and queues: the signature over
the raw body (an unsigned, forged or stale request is a 401), the payload (400), and
that this signed request was not seen before (a replay gets 200 and "already handled",
and nothing is done again). Who pressed, whether they may, the action itself and the
message updates happen afterwards on the app's worker (slack_desk.py).

Slack ignores the body of this 200 for block_actions; the JSON says the same thing for
anyone else reading it, and the result reaches the person through `response_url`.
"""
from __future__ import annotations

import logging
import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from alerts.slack_actions import MAX_CLOCK_SKEW_S, InvalidSlackSignature, parse_interaction, verify_signature
from alerts.slack_commands import USAGE as COMMAND_USAGE
from alerts.slack_commands import (
    CommandError,
    SlackCommand,
    is_slash_command,
    parse_command_form,
    parse_silence_text,
    read_form,
)
from monitor.api import slack_silences
from monitor.api.deps import VigilDep
from monitor.api.slack_desk import VERBS, SlackDesk
from monitor.store.slack_seen import first_sight
from monitor.vigil import Vigil

router = APIRouter(tags=["slack"])
log = logging.getLogger("vigil.api")


def _ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


# The route reads the raw body (the signature covers its bytes), so FastAPI cannot see
# what it takes: the document says it here.
SLACK_REQUEST = {
    "parameters": [{"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": d}
                   for name, d in (("X-Slack-Request-Timestamp", "seconds since the epoch, within 300 s of now"),
                                   ("X-Slack-Signature", "v0=<HMAC-SHA256 of v0:<timestamp>:<body>>"))],
    "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object",
        "properties": {"payload": {"type": "string", "description": "a button: Slack's block_actions JSON"},
                       "command": {"type": "string", "description": "a slash command: '/vigil'"},
                       "text": {"type": "string", "description": "its text: 'silence list'"},
                       "user_id": {"type": "string"}, "user_name": {"type": "string"},
                       "channel_id": {"type": "string"}, "response_url": {"type": "string"},
                       "trigger_id": {"type": "string"}}}}}},
}
COMMAND_BUDGET_S = 2.0  # Slack shows a slash command's HTTP answer if it comes within 3 s


@router.post("/v1/slack/actions", openapi_extra=SLACK_REQUEST, responses={
    200: {"description": "taken (the result follows through response_url), already handled, or busy"},
    400: {"description": "not a block_actions payload or slash command form Vigil understands"},
    401: {"description": "not signed by Slack with slack.signing_secret, or older than 300 s"},
    503: {"description": "slack.signing_secret is not set"}})
async def slack_actions(vigil: VigilDep, request: Request) -> JSONResponse:
    secret = vigil.config.slack.signing_secret
    if not secret:
        raise HTTPException(503, "Slack actions are disabled: set slack.signing_secret")
    body = await request.body()
    now = time.time()
    if _is_ssl_check(body):  # as Slack's Bolt answers it: the URL check, before any signature
        return JSONResponse({})
    try:
        verify_signature(body, request.headers, secret, now)  # before anything is read
        form = read_form(body)
    except InvalidSlackSignature as e:
        raise HTTPException(401, f"invalid Slack signature: {e}") from None
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    if is_slash_command(form):
        try:
            cmd = parse_command_form(form)
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        return await _slash_command(vigil, request, cmd, now)
    try:
        action = parse_interaction(body, request.headers, secret, now)
    except InvalidSlackSignature as e:
        raise HTTPException(401, f"invalid Slack signature: {e}") from None
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    # Both headers were checked by parse_interaction; the pair names this signed request.
    stamp, signature = int(request.headers["x-slack-request-timestamp"]), request.headers["x-slack-signature"]
    if not await run_in_threadpool(first_sight, vigil.store.tx, stamp, signature, now, MAX_CLOCK_SKEW_S):
        log.warning("refused a replayed Slack request", extra={"user": action.user_id, "action": action.action_id,
                                                                "incident_id": action.incident_id})
        return _ephemeral("This button press was already handled.")
    desk: SlackDesk = request.app.state.slack_desk  # made by create_app
    if not desk.accept(action):
        return _ephemeral("Vigil is busy with other button presses: press again in a minute.")
    return _ephemeral(f"On it: {VERBS[action.action_id]} incident {action.incident_id}; the result follows here.")


def _is_ssl_check(body: bytes) -> bool:
    """Slack's certificate check of a slash command's URL (`ssl_check=1`, no command, no
    payload) wants a 200; it was a 400 or 401 and the command's set-up reported the URL failing."""
    if len(body) > 1000 or b"ssl_check=1" not in body:
        return False
    try:
        form = read_form(body)
    except ValueError:
        return False
    return form.get("ssl_check") == ["1"] and "command" not in form and "payload" not in form


async def _slash_command(vigil: Vigil, request: Request, cmd: SlackCommand, now: float) -> JSONResponse:
    """Check the text at once (an error names the bad matcher), refuse a replay, then run
    it on the desk's worker and answer with its result when it comes within the budget."""
    try:
        ask = parse_silence_text(cmd.text)
    except CommandError as e:
        return _ephemeral(f"{e}")
    if ask.verb == "help":
        return _ephemeral(COMMAND_USAGE)
    if ask.verb == "add":
        problem = slack_silences.check_add(cmd, ask, now)
        if problem is not None:
            return _ephemeral(problem)
    stamp, signature = int(request.headers["x-slack-request-timestamp"]), request.headers["x-slack-signature"]
    if not await run_in_threadpool(first_sight, vigil.store.tx, stamp, signature, now, MAX_CLOCK_SKEW_S):
        log.warning("refused a replayed Slack command", extra={"user": cmd.user_id, "verb": ask.verb})
        return _ephemeral("This command was already handled.")
    desk: SlackDesk = request.app.state.slack_desk
    return _ephemeral(await run_in_threadpool(desk.command, cmd, ask, COMMAND_BUDGET_S))
