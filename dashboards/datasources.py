"""Grafana data sources for Prometheus, Loki and Tempo, wired to each other.

The links are what make "click the latency, see the logs, click the trace id, see
the trace" work:
- Prometheus exemplars carry a trace id -> Tempo (`exemplarTraceIdDestinations`).
- Loki lines (or the `trace_id` structured-metadata field) carry a trace id -> a
  derived field that opens the trace in Tempo.
- Tempo spans -> the logs of the same service around the span (`tracesToLogsV2`,
  filtered by trace id), and -> request-rate metrics of that service.
"""
from __future__ import annotations

from typing import Any

from monitor.config import VigilConfig

from .builder import DataSources
from .queries import ServingMetrics

# `trace_id=abc`, `traceID: "abc"`, `"trace_id":"abc"` in a log line; group 1 is the id.
TRACE_ID_IN_LINE = r"""(?:trace_?id|traceID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{16,32})"""


def datasource_models(config: VigilConfig, serving: ServingMetrics = ServingMetrics()) -> list[dict[str, Any]]:
    """Data-source models as Grafana's provisioning file and HTTP API take them
    (`$` is literal here; the YAML writer escapes it)."""
    ds = DataSources.from_config(config.grafana)
    src = config.sources
    out: list[dict[str, Any]] = []
    prom: dict[str, Any] = {
        "name": "Vigil Prometheus", "type": "prometheus", "uid": ds.prometheus, "access": "proxy",
        "url": src.prometheus.url, "isDefault": False, "editable": False,
        # timeInterval = the scrape interval, so $__rate_interval always spans >= 4 samples
        # (Grafana's 15 s default makes rate() panels over 60 s data show "No data").
        "jsonData": {"httpMethod": "POST", "timeInterval": f"{int(src.prometheus.step)}s"},
    }
    if src.tempo:
        prom["jsonData"]["exemplarTraceIdDestinations"] = [{"name": "trace_id", "datasourceUid": ds.tempo}]
    out.append(prom)

    if src.loki:
        loki: dict[str, Any] = {
            "name": "Vigil Loki", "type": "loki", "uid": ds.loki, "access": "proxy", "url": src.loki.url,
            "editable": False, "jsonData": {"maxLines": src.loki.page_limit},
        }
        if src.tempo:
            loki["jsonData"]["derivedFields"] = [
                {"name": "TraceID", "matcherType": "regex", "matcherRegex": TRACE_ID_IN_LINE,
                 "url": "${__value.raw}", "datasourceUid": ds.tempo, "urlDisplayLabel": "Open trace"},
                {"name": "trace_id", "matcherType": "label", "matcherRegex": "trace_id",
                 "url": "${__value.raw}", "datasourceUid": ds.tempo, "urlDisplayLabel": "Open trace"},
            ]
        if src.loki.tenant:
            loki["jsonData"]["httpHeaderName1"] = "X-Scope-OrgID"
            loki["secureJsonData"] = {"httpHeaderValue1": src.loki.tenant}
        out.append(loki)

    if src.tempo:
        service_tag = [{"key": "service.name", "value": serving.service_label}]
        tempo: dict[str, Any] = {
            "name": "Vigil Tempo", "type": "tempo", "uid": ds.tempo, "access": "proxy", "url": src.tempo.url,
            "editable": False,
            "jsonData": {
                "nodeGraph": {"enabled": True},
                "serviceMap": {"datasourceUid": ds.prometheus},
                "search": {"hide": False},
                "tracesToMetrics": {
                    "datasourceUid": ds.prometheus, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
                    "tags": service_tag,
                    "queries": [{"name": "Request rate",
                                 "query": f"sum(rate({serving.requests}{{$__tags}}[5m]))"}],
                },
            },
        }
        if src.loki:
            tempo["jsonData"]["tracesToLogsV2"] = {
                "datasourceUid": ds.loki, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
                "filterByTraceID": True, "filterBySpanID": False,
                "tags": [{"key": "service.name", "value": serving.log_service_label}],
            }
            tempo["jsonData"]["lokiSearch"] = {"datasourceUid": ds.loki}
        out.append(tempo)
    return out
