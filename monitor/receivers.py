"""The receivers a configuration asks for (monitor/config_receivers.py), built once at start-up."""
from __future__ import annotations

import logging

from alerts.outbox import Notifier
from alerts.receivers.alertmanager import AlertmanagerReceiver
from alerts.receivers.base import Match, Receiving
from alerts.receivers.http import HttpCaller, RetrySettings, SecretMissing, SecretSource
from alerts.receivers.opsgenie import REGION_URLS, OpsgenieReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from alerts.receivers.webhook import WebhookReceiver
from monitor.config import VigilConfig
from monitor.config_errors import Loc
from monitor.config_receivers import (
    AlertmanagerReceiverConfig,
    OpsgenieReceiverConfig,
    PagerDutyReceiverConfig,
    ReceiverConfig,
    WebhookReceiverConfig,
)

log = logging.getLogger("vigil")


def _secret(config: VigilConfig, what: str, env: str | None, file: str | None) -> SecretSource:
    return SecretSource(what, env=env, file=config.resolve_path(file) if file is not None else None)


def _http(backend: str, r: ReceiverConfig) -> HttpCaller:
    return HttpCaller(backend, timeout_s=r.timeout_s,
                      retry=RetrySettings(max_attempts=r.max_attempts, backoff_s=r.backoff_s, max_wait_s=r.max_wait_s))


def _receiving(r: ReceiverConfig) -> Receiving:
    events = getattr(r, "events", ["incident"])  # Alertmanager takes incidents only
    return Receiving(Match(models=frozenset(r.models), severities=frozenset(r.severities)), r.dedup_prefix,
                     incidents="incident" in events, rollbacks="rollback" in events, deploys="deploy" in events,
                     follows_incident=isinstance(r, (OpsgenieReceiverConfig, PagerDutyReceiverConfig)))


def build_receiver(config: VigilConfig, r: ReceiverConfig) -> Notifier:
    what = f"receivers[{r.name}]"
    if isinstance(r, PagerDutyReceiverConfig):
        key = _secret(config, f"{what}: the PagerDuty routing key", r.routing_key_env, r.routing_key_file)
        return PagerDutyReceiver(r.name, key, _http(f"PagerDuty ({r.name})", r), url=r.url, source=r.source,
                                 receiving=_receiving(r))
    if isinstance(r, OpsgenieReceiverConfig):
        key = _secret(config, f"{what}: the Opsgenie API key", r.api_key_env, r.api_key_file)
        return OpsgenieReceiver(r.name, key, _http(f"Opsgenie ({r.name})", r), url=r.url or REGION_URLS[r.region],
                                source=r.source, responders=[p.model_dump() for p in r.responders],
                                receiving=_receiving(r))
    if isinstance(r, WebhookReceiverConfig):
        secret = _secret(config, f"{what}: the webhook secret", r.secret_env, r.secret_file)
        return WebhookReceiver(r.name, r.url, secret, _http(f"webhook ({r.name})", r), receiving=_receiving(r))
    assert isinstance(r, AlertmanagerReceiverConfig)
    token = (_secret(config, f"{what}: the Alertmanager bearer token", r.bearer_token_env, r.bearer_token_file)
             if r.bearer_token_env or r.bearer_token_file else None)
    return AlertmanagerReceiver(r.name, r.url, _http(f"Alertmanager ({r.name})", r), resend_every_s=r.resend_every,
                                labels=r.labels, bearer_token=token, receiving=_receiving(r))


def build_receivers(config: VigilConfig) -> dict[str, Notifier]:
    out = {r.name: build_receiver(config, r) for r in config.receivers}
    if out:
        log.info("receivers configured", extra={"receivers": sorted(out)})
    for name, receiver in out.items():
        _warn_unreadable(name, receiver)
    return out


def _unreadable(receiver: Notifier) -> list[tuple[str, str]]:
    """(the key naming it, why) for each of a receiver's secrets that cannot be read now
    (never the secret itself)."""
    out = []
    for attr in ("routing_key", "api_key", "secret", "bearer_token"):
        source = getattr(receiver, attr, None)
        if isinstance(source, SecretSource):
            try:
                source.read()
            except SecretMissing as e:
                out.append((f"{attr}_env" if source.env is not None else f"{attr}_file", str(e)))
    return out


def secret_unreadable(receiver: Notifier) -> bool:
    """Whether one of the receiver's secrets cannot be read in this process (a terminal
    without the daemon's environment): its messages are not this process's to send."""
    return bool(_unreadable(receiver))


def secret_error(receiver: Notifier) -> str | None:
    """Why one of the receiver's secrets cannot be read in this process (None: each can)."""
    return next((why for _, why in _unreadable(receiver)), None)


def _warn_unreadable(name: str, receiver: Notifier) -> None:
    """Say at start-up, not at the first page, that a receiver's secret cannot be read.
    Its messages wait in the outbox (retried) until it can."""
    for _, error in _unreadable(receiver):
        log.warning("receiver cannot read its secret; its messages wait in the outbox",
                    extra={"receiver": name, "error": error})


def secret_warnings(config: VigilConfig) -> list[tuple[Loc, str]]:
    """What `vigil check-config` warns about, as the daemon does at start: receiver secrets
    (pages would wait in the outbox) and serving-webhook secrets (rollbacks would fail)
    that cannot be read now; each with the key it is about (its line in the file)."""
    from monitor.executors.base import ExecutorError
    from monitor.executors.config import WebhookExecutorConfig
    from monitor.executors.webhook import WebhookExecutor

    out: list[tuple[Loc, str]] = [
        (("receivers", i, key), f"receivers[{r.name}].{key}: {e}; its messages would wait in the outbox")
        for i, r in enumerate(config.receivers) for key, e in _unreadable(build_receiver(config, r))]
    for i, m in enumerate(config.models):
        if isinstance(m.serving, WebhookExecutorConfig):
            hook = WebhookExecutor(m.serving, base_dir=config.base_dir)
            try:
                hook.preflight()
            except ExecutorError as e:
                out.append((("models", i, "serving"),
                            f"models[{m.name}].serving: {e.detail}; a rollback would fail before moving anything"))
            finally:
                hook.close()
    return out


