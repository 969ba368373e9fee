"""`POST /v1/slack/actions`: the buttons on Vigil's Slack messages (ack, silence,
rollback). Slack signs each callback; an unsigned, forged or stale one is a 401."""
from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from alerts.slack_actions import InvalidSlackSignature, parse_interaction
from monitor.api.deps import VigilDep

router = APIRouter(tags=["slack"])


@router.post("/v1/slack/actions")
async def slack_actions(vigil: VigilDep, request: Request) -> JSONResponse:
    secret = vigil.config.slack.signing_secret
    if not secret:
        raise HTTPException(503, "Slack actions are disabled: set slack.signing_secret")
    body = await request.body()
    try:
        action = parse_interaction(body, request.headers, secret, time.time())
    except InvalidSlackSignature as e:
        raise HTTPException(401, f"invalid Slack signature: {e}") from None
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    text = vigil.operator.slack_action(action, time.time())
    return JSONResponse({"response_type": "ephemeral", "text": text})
