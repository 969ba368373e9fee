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

from .queries import ServingMetrics, serving_for
from .spec import DataSourcesSpec, LokiSpec, TempoSpec

# `trace_id=abc`, `traceID: "abc"`, `"trace_id":"abc"` in a log line; group 1 is the id.
TRACE_ID_IN_LINE = r"""(?:trace_?id|traceID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{16,32})"""


def datasource_models(src: DataSourcesSpec, serving: ServingMetrics | None = None) -> list[dict[str, Any]]:
    """Data-source models as Grafana's provisioning file and HTTP API take them
    (`$` is literal here; the YAML writer escapes it)."""
    serving = serving or serving_for(src)
    out = [_prometheus(src)]
    if src.loki:
        out.append(_loki(src, src.loki))
    if src.tempo:
        out.append(_tempo(src, src.tempo, serving))
    return out


def _prometheus(src: DataSourcesSpec) -> dict[str, Any]:
    prom: dict[str, Any] = {
        "name": "Vigil Prometheus", "type": "prometheus", "uid": src.uids.prometheus, "access": "proxy",
        "url": src.prometheus.url, "isDefault": False, "editable": False,
        # timeInterval = the scrape interval, so $__rate_interval always spans >= 4 samples
        # (Grafana's 15 s default makes rate() panels over 60 s data show "No data").
        "jsonData": {"httpMethod": "POST", "timeInterval": f"{int(src.prometheus.scrape_interval_s)}s"},
    }
    if src.tempo:
        prom["jsonData"]["exemplarTraceIdDestinations"] = [{"name": "trace_id", "datasourceUid": src.uids.tempo}]
    if src.prometheus.tenant:
        prom["jsonData"]["httpHeaderName1"] = "X-Scope-OrgID"
        prom["secureJsonData"] = {"httpHeaderValue1": src.prometheus.tenant}
    return prom


def _loki(src: DataSourcesSpec, spec: LokiSpec) -> dict[str, Any]:
    ds = src.uids
    loki: dict[str, Any] = {
        "name": "Vigil Loki", "type": "loki", "uid": ds.loki, "access": "proxy", "url": spec.url,
        "editable": False, "jsonData": {"maxLines": spec.max_lines},
    }
    if src.tempo:
        loki["jsonData"]["derivedFields"] = [
            {"name": "TraceID", "matcherType": "regex", "matcherRegex": TRACE_ID_IN_LINE,
             "url": "${__value.raw}", "datasourceUid": ds.tempo, "urlDisplayLabel": "Open trace"},
            {"name": "trace_id", "matcherType": "label", "matcherRegex": "trace_id",
             "url": "${__value.raw}", "datasourceUid": ds.tempo, "urlDisplayLabel": "Open trace"},
        ]
    if spec.tenant:
        loki["jsonData"]["httpHeaderName1"] = "X-Scope-OrgID"
        loki["secureJsonData"] = {"httpHeaderValue1": spec.tenant}
    return loki


def _tempo(src: DataSourcesSpec, spec: TempoSpec, serving: ServingMetrics) -> dict[str, Any]:
    ds = src.uids
    tempo: dict[str, Any] = {
        "name": "Vigil Tempo", "type": "tempo", "uid": ds.tempo, "access": "proxy", "url": spec.url,
        "editable": False,
        "jsonData": {
            "nodeGraph": {"enabled": True},
            "serviceMap": {"datasourceUid": ds.prometheus},
            "search": {"hide": False},
            "tracesToMetrics": {
                "datasourceUid": ds.prometheus, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
                "tags": [{"key": "service.name", "value": serving.service_label}],
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
    if spec.tenant:
        tempo["jsonData"]["httpHeaderName1"] = "X-Scope-OrgID"
        tempo["secureJsonData"] = {"httpHeaderValue1": spec.tenant}
    return tempo
