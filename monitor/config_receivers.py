"""`receivers:` in vigil.yaml: where incidents go besides chat (PagerDuty, Opsgenie, a
signed webhook, Alertmanager), and which models and severities each takes.

    receivers:
      - name: pagerduty-ml            # outbox notifier name, unique, at most 40 characters
        kind: pagerduty
        routing_key_env: PAGERDUTY_ROUTING_KEY   # or routing_key_file: /run/secrets/pd
        severities: [critical]        # default: warning and critical
        models: [recommender]         # default: every model
        events: [incident, rollback, deploy]  # pagerduty, webhook (opsgenie: no deploy); default: [incident]

`events`: `incident` pages (trigger, acknowledge, resolve); `rollback` tells each rollback
Vigil ran or tried (and canary pulls, promotions and promotion suggestions): a PagerDuty
*change event* on the service (a move done or failed: it notifies no one, it shows under
"recent changes" beside the incident), an Opsgenie note on the incident's alert when it
was paged for it, a webhook POST with `event: rollback` (every outcome: done, failed, dry
run, suggested). `deploy`: each alias move the registry poll sees (a PagerDuty change event,
a webhook `event: deploy`), so "what changed?" beside a page shows the model's deploys.
Both off by default, so a receiver that parses only incident events is never sent one it
does not know.

Keys and secrets are named, never written: `<what>_env` (an environment variable) or
`<what>_file` (a file, e.g. a mounted Kubernetes secret), read on each call so a rotated
one is picked up. The default `receivers: []` keeps older configs as they were.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.receivers.http import DELIVERY_BUDGET_S
from monitor.config_types import Duration, HttpURL

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
# Prometheus's label names: Alertmanager answers a push with any other 400 "invalid label set".
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_DELIVERY_S = DELIVERY_BUDGET_S  # one call, retries included; a whole delivery is cut there too
RESERVED = frozenset({"slack", "sink", "grafana"})  # the built-in notifiers' names


SeverityName = Literal["warning", "critical"]


def _every_severity() -> list[SeverityName]:
    return ["warning", "critical"]


ReceiverEvent = Literal["incident", "rollback", "deploy"]
OpsgenieEvent = Literal["incident", "rollback"]


def _incidents_only() -> list[ReceiverEvent]:
    return ["incident"]


def _opsgenie_incidents_only() -> list[OpsgenieEvent]:
    return ["incident"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_secret(env: str | None, file: str | None, what: str, *, required: bool = True) -> None:
    """Exactly one of `<what>_env` and `<what>_file` (or neither, when optional)."""
    if env is not None and file is not None:
        raise ValueError(f"set one of {what}_env and {what}_file, not both")
    if required and env is None and file is None:
        raise ValueError(f"set {what}_env (an environment variable's name) or {what}_file (a file holding it)")
    if env is not None and not _ENV_NAME.match(env):
        # The value is not echoed: someone may have pasted the secret itself here.
        raise ValueError(f"{what}_env must be the name of an environment variable, such as VIGIL_{what.upper()}")


def _base_of(endpoint: str) -> AfterValidator:
    """The base URL the receiver appends `endpoint` to, also when the whole endpoint was
    pasted (PagerDuty's docs name https://events.pagerduty.com/v2/enqueue): it was doubled."""
    def base(v: str) -> str:
        trimmed = v.strip().rstrip("/")
        return trimmed[:-len(endpoint)] if trimmed.endswith(endpoint) else v

    return AfterValidator(base)


class _Receiver(_Model):
    name: str = Field(min_length=1, max_length=40)
    models: list[str] = Field(default_factory=list)  # empty: every model
    severities: list[SeverityName] = Field(default_factory=_every_severity, min_length=1)
    # Prefix of the incident's dedup key: distinct per Vigil installation that shares a
    # PagerDuty service or Opsgenie team with another (staging and production, say).
    dedup_prefix: str = Field("vigil", pattern=r"^[A-Za-z0-9_.\-]{1,40}$")
    timeout_s: float = Field(10.0, gt=0, le=120)
    max_attempts: int = Field(3, ge=1, le=10)  # in one delivery; the outbox retries later after that
    backoff_s: float = Field(1.0, ge=0)
    max_wait_s: float = Field(30.0, ge=0, le=120)

    @model_validator(mode="after")
    def _fits_a_claim(self) -> _Receiver:
        # One delivery must end well within the outbox claim (monitor/store/outbox.py, 300 s),
        # or another sender takes the row over while this one is still calling.
        worst = self.max_attempts * self.timeout_s + (self.max_attempts - 1) * self.max_wait_s
        if worst > MAX_DELIVERY_S:
            raise ValueError(f"max_attempts x timeout_s + (max_attempts - 1) x max_wait_s is {worst:g} s; "
                             f"expected at most {MAX_DELIVERY_S:g} s (lower one of them)")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("expected lower-case letters, digits, '.', '_' or '-'")
        if v in RESERVED:
            raise ValueError(f"{v!r} is a built-in notifier's name; choose another")
        return v


class _ReceiverOfChanges(_Receiver):
    """A receiver that can also be told of rollbacks (`events`)."""

    events: list[ReceiverEvent] = Field(default_factory=_incidents_only, min_length=1)

    @field_validator("events")
    @classmethod
    def _once_each(cls, v: list[ReceiverEvent]) -> list[ReceiverEvent]:
        return list(dict.fromkeys(v))


class PagerDutyReceiverConfig(_ReceiverOfChanges):
    kind: Literal["pagerduty"]
    routing_key_env: str | None = None  # the Events API v2 integration key
    routing_key_file: str | None = None
    url: Annotated[HttpURL, _base_of("/v2/enqueue")] = "https://events.pagerduty.com"
    source: str = ""  # PD's payload.source; default vigil/<model>

    @model_validator(mode="after")
    def _key(self) -> PagerDutyReceiverConfig:
        check_secret(self.routing_key_env, self.routing_key_file, "routing_key")
        return self


class OpsgenieResponder(_Model):
    type: Literal["team", "user", "escalation", "schedule"]
    name: str = Field(min_length=1)


class OpsgenieReceiverConfig(_ReceiverOfChanges):
    kind: Literal["opsgenie"]
    # a rollback is a note on the incident's alert; a deploy has no alert to note it on
    events: list[OpsgenieEvent] = Field(default_factory=_opsgenie_incidents_only, min_length=1)  # type: ignore[assignment]
    api_key_env: str | None = None  # an API integration's key, sent as `GenieKey <key>`
    api_key_file: str | None = None
    region: Literal["us", "eu"] = "us"
    url: Annotated[HttpURL, _base_of("/v2/alerts")] | None = None  # overrides region (a proxy, a test server)
    source: str = Field("Vigil", max_length=100)
    responders: list[OpsgenieResponder] = Field(default_factory=list)

    @model_validator(mode="after")
    def _key(self) -> OpsgenieReceiverConfig:
        check_secret(self.api_key_env, self.api_key_file, "api_key")
        if "incident" not in self.events:  # each note went nowhere, without a word
            raise ValueError("events: a rollback is a note on the alert this receiver paged for its incident; "
                             "expected 'incident' with 'rollback' (as [incident, rollback])")
        return self


class WebhookReceiverConfig(_ReceiverOfChanges):
    kind: Literal["webhook"]
    url: HttpURL
    secret_env: str | None = None  # the HMAC-SHA256 key of X-Vigil-Signature
    secret_file: str | None = None

    @model_validator(mode="after")
    def _secret(self) -> WebhookReceiverConfig:
        check_secret(self.secret_env, self.secret_file, "secret")
        return self


class AlertmanagerReceiverConfig(_Receiver):
    kind: Literal["alertmanager"]
    url: Annotated[HttpURL, _base_of("/api/v2/alerts")]  # the Alertmanager's base URL, e.g. http://alertmanager:9093
    resend_every: Duration = Field(60.0, ge=1)  # re-push of open alerts; they end 4 of these after the last
    labels: dict[str, str] = Field(default_factory=dict)  # static labels added to every alert (team, env)
    bearer_token_env: str | None = None
    bearer_token_file: str | None = None

    @model_validator(mode="after")
    def _token(self) -> AlertmanagerReceiverConfig:
        check_secret(self.bearer_token_env, self.bearer_token_file, "bearer_token", required=False)
        reserved = {"alertname", "model", "severity", "entity", "vigil_incident"} & set(self.labels)
        if reserved:
            raise ValueError(f"labels: {', '.join(sorted(reserved))} are set by Vigil; choose other label names")
        invalid = sorted(repr(n) for n in self.labels if not _LABEL_NAME.match(n))
        if invalid:
            # Caught here, not at the first page: every push carrying one would be refused.
            raise ValueError(f"labels: {', '.join(invalid)} is not a label name Alertmanager takes "
                             "(expected [a-zA-Z_][a-zA-Z0-9_]*)")
        return self


ReceiverConfig = Annotated[
    PagerDutyReceiverConfig | OpsgenieReceiverConfig | WebhookReceiverConfig | AlertmanagerReceiverConfig,
    Field(discriminator="kind"),
]


def receiver_problems(receivers: list[ReceiverConfig], models: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """Names unique, and every model a receiver names is configured: (where, what) each."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    names = [r.name for r in receivers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append((("receivers",), f"names must be unique, repeated: {', '.join(dupes)}"))
    for i, r in enumerate(receivers):
        unknown = sorted(set(r.models) - models)
        if unknown:
            out.append((("receivers", i, "models"), f"unknown model(s) {', '.join(unknown)}; "
                        f"configured: {', '.join(sorted(models))}"))
    return out
