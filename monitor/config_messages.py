"""`messages:` in vigil.yaml: how alerts read and where their links point.

Times are shown in `time_zone` (an IANA name such as Europe/Paris; default UTC). Each
message links to a runbook: the model's own for the finding kind, else its `default`,
else the global one for the kind, else the global `default`. The Grafana link opens the
model's dashboard from `grafana_before` before the onset to `grafana_after` after the
last update; the MLflow link opens the model version in the registry UI.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

from detectors.records import FindingKind
from monitor.config_types import Duration, HttpURL

RUNBOOK_KEYS = ("default", *(str(k) for k in FindingKind))


def check_runbook_keys(runbooks: dict[str, str]) -> dict[str, str]:
    """Runbook keys are finding kinds or `default`: a misspelt kind would never be linked."""
    bad = sorted(k for k in runbooks if k not in RUNBOOK_KEYS)
    if bad:
        raise ValueError(f"unknown runbook key(s) {', '.join(bad)}; expected one of {', '.join(RUNBOOK_KEYS)}")
    return runbooks


class MessagesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = "UTC"
    runbooks: dict[str, HttpURL] = {}
    mlflow_ui_url: HttpURL | None = None  # default: sources.mlflow.tracking_uri when it is http(s)
    grafana_before: Duration = 3600.0
    grafana_after: Duration = 3600.0

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; expected an IANA name such as UTC or Europe/Paris") from None
        return v

    @field_validator("runbooks")
    @classmethod
    def _runbook_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return check_runbook_keys(v)


def link_warnings(api_public_url: str | None, api_base: str, grafana_url: str | None) -> list[str]:
    """What `vigil check-config` warns about: links in messages that nobody else can open."""
    out = []
    if not api_public_url:
        out.append(f"api.public_url is not set: drift report links in messages point at {api_base}, which only "
                   "this machine can open; set it to the URL people reach Vigil's API at")
    if not grafana_url:
        out.append("grafana.url and grafana.public_url are not set: messages carry no Grafana link")
    return out


def button_warnings(bot_token: str | None, signing_secret: str | None, api_base: str) -> list[str]:
    """What `vigil check-config` and the daemon's start warn about: Slack messages whose buttons
    nobody can use (`api_base`: where Slack must send the presses)."""
    if not bot_token or signing_secret:
        return []
    return [f"slack.signing_secret is not set: the Acknowledge, Silence and Roll back buttons on Vigil's Slack "
            "messages are refused when pressed (POST /v1/slack/actions answers 503); set it to the Slack app's "
            f"Signing Secret, with the app's interactivity Request URL at {str(api_base).rstrip('/')}/v1/slack/actions"]
