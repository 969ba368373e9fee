"""What every Vigil dashboard shares: data-source refs, PromQL quoting, panel
factories on top of grafana-foundation-sdk, and `finalize`, which turns a built
dashboard into the JSON Grafana stores.

The SDK gives typed builders and Grafana's own schema; it leaves panel ids,
refIds and per-target data sources to the caller, so `finalize` fills them in.
That keeps "unique panel ids" and "every query names its data source" true by
construction rather than by care in each dashboard module.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from grafana_foundation_sdk.builders import annotationslist, logs, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import loki as lokiq
from grafana_foundation_sdk.builders import prometheus as promq
from grafana_foundation_sdk.builders import tempo as tempoq
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .spec import DataSourceUids

DASHBOARD_TAG = "vigil"
GRAFANA_ANNOTATIONS = dm.DataSourceRef(type_val="grafana", uid="-- Grafana --")
K = TypeVar("K")
_REGEX_META = re.compile(r"([.+*?()|\[\]{}^$\\])")


@dataclass(frozen=True)
class DataSourceRefs:
    """The SDK refs panels, targets and variables carry, for the configured uids."""

    uids: DataSourceUids

    @property
    def prom(self) -> dm.DataSourceRef:
        return dm.DataSourceRef(type_val="prometheus", uid=self.uids.prometheus)

    @property
    def logs(self) -> dm.DataSourceRef:
        return dm.DataSourceRef(type_val="loki", uid=self.uids.loki)

    @property
    def traces(self) -> dm.DataSourceRef:
        return dm.DataSourceRef(type_val="tempo", uid=self.uids.tempo)


# --------------------------------------------------------------------------- quoting
def quote(value: str) -> str:
    """A PromQL/LogQL/TraceQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_alternation(values: Iterable[str]) -> str:
    """`a|b\\.c` matching exactly the given names (RE2 syntax, unquoted)."""
    return "|".join(_REGEX_META.sub(r"\\\1", v) for v in values)


def matchers(*parts: str) -> str:
    """'{a="1", b=~"x"}' from matcher strings, skipping empty ones."""
    return "{" + ", ".join(p.strip() for p in parts if p and p.strip()) + "}"


# --------------------------------------------------------------------------- panels
Step = tuple[float | None, str]  # (threshold value, colour); the first value is None (base)


def thresholds(steps: Sequence[Step]) -> db.ThresholdsConfig:
    """Absolute threshold steps; the first step's value is None (the base colour)."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps]
    )


def breach_steps(threshold: float, bad: Literal["above", "below"], warning: float | None = None) -> list[Step]:
    """Colours for 'bad above X' or 'bad below X', with an optional warning level before it."""
    if bad == "above":
        steps: list[Step] = [(None, "green")]
        if warning is not None and warning < threshold:
            steps.append((warning, "orange"))
        return steps + [(threshold, "red")]
    steps = [(None, "red")]
    if warning is not None and warning > threshold:
        steps.append((threshold, "orange"))
        return steps + [(warning, "green")]
    return steps + [(threshold, "green")]


def prom_target(expr: str, legend: str = "__auto", *, instant: bool = False, exemplar: bool = False) -> promq.Dataquery:
    q = promq.Dataquery().expr(expr).legend_format(legend)
    q = q.instant() if instant else q.range()
    if exemplar:
        q = q.exemplar(True)
    return q


@dataclass(frozen=True)
class ValueStyle:
    """How a panel shows its values: the unit, threshold colours (`steps`, drawn as
    dashed lines on a time series), the floor of the value axis, and the text shown
    when the query returns nothing (`no_value`; stat panels)."""

    unit: str = "short"
    steps: Sequence[Step] | None = None
    min_val: float | None = None
    no_value: str | None = None


def timeseries_panel(
    title: str,
    ds: dm.DataSourceRef,
    targets: Sequence[promq.Dataquery | lokiq.Dataquery],
    style: ValueStyle = ValueStyle(),
    *,
    description: str = "",
    width: int = 12,
    height: int = 8,
    links: list[tuple[str, str]] | None = None,
) -> timeseries.Panel:
    """A time series; thresholds are drawn as dashed lines so the SLO or alert level is visible."""
    p = (
        timeseries.Panel().title(title).description(description).datasource(ds)
        .unit(style.unit).span(width).height(height)
        .legend(VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.BOTTOM)
                .show_legend(True).calcs(["lastNotNull", "max"]))
    )
    for t in targets:
        p = p.with_target(t)
    if style.min_val is not None:
        p = p.min(style.min_val)
    if style.steps:
        p = p.thresholds(thresholds(style.steps)).thresholds_style(
            GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    if links:
        p = p.data_links([db.DashboardLink(t).url(u).target_blank(True) for t, u in links])
    return p


def stat_panel(
    title: str,
    ds: dm.DataSourceRef,
    targets: Sequence[promq.Dataquery],
    style: ValueStyle = ValueStyle(),
    *,
    mappings: dict[str, tuple[str, str]] | None = None,
    description: str = "",
    width: int = 6,
    height: int = 4,
) -> stat.Panel:
    """A single number (or one per series), coloured by thresholds or by value mappings."""
    p = (
        stat.Panel().title(title).description(description).datasource(ds).unit(style.unit).span(width)
        .height(height).color_mode(cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    for t in targets:
        p = p.with_target(t)
    if style.min_val is not None:
        p = p.min(style.min_val)
    if style.steps:
        p = p.thresholds(thresholds(style.steps))
    if mappings:
        p = p.mappings([value_map(mappings)])
    if style.no_value is not None:
        p = p.no_value(style.no_value)
    return p


def value_map(mappings: dict[str, tuple[str, str]]) -> dm.ValueMap:
    """Grafana value mappings from {value: (text, colour)}, in the given order."""
    return dm.ValueMap(options={k: dm.ValueMappingResult(text=text, color=color, index=i)
                                for i, (k, (text, color)) in enumerate(mappings.items())})


def table_panel(
    title: str, ds: dm.DataSourceRef, targets: list[Any], *, description: str = "", width: int = 12, height: int = 8,
) -> table.Panel:
    p = table.Panel().title(title).description(description).datasource(ds).span(width).height(height)
    for t in targets:
        p = p.with_target(t)
    return p


def logs_panel(title: str, ds: dm.DataSourceRef, expr: str, *, description: str = "", width: int = 24,
               height: int = 10, max_lines: int = 200) -> logs.Panel:
    return (
        logs.Panel().title(title).description(description).datasource(ds).span(width).height(height)
        .with_target(lokiq.Dataquery().expr(expr).max_lines(max_lines).query_type("range"))
        .show_time(True).wrap_log_message(True).enable_log_details(True)
        .sort_order(cm.LogsSortOrder.DESCENDING)
    )


def loki_metric_target(expr: str, legend: str = "") -> lokiq.Dataquery:
    return lokiq.Dataquery().expr(expr).legend_format(legend).query_type("range")


def traces_panel(title: str, ds: dm.DataSourceRef, traceql: str, *, description: str = "", width: int = 24,
                 height: int = 10, limit: int = 20) -> table.Panel:
    """Tempo search results as a table; each trace id links to the trace view."""
    return table_panel(
        title, ds, [tempoq.TempoQuery().query_type("traceql").query(traceql).limit(limit)],
        description=description, width=width, height=height,
    )


def annotations_list_panel(title: str, tags: list[str], *, width: int = 12, height: int = 8,
                           limit: int = 20) -> annotationslist.Panel:
    return (
        annotationslist.Panel().title(title).span(width).height(height)
        .only_from_this_dashboard(False).only_in_time_range(False).tags(tags).limit(limit)
        .show_tags(True).show_time(True).show_user(False)
    )


def annotation_query(name: str, tags: list[str], color: str) -> db.AnnotationQuery:
    """Org-wide annotations Vigil posted, picked by tags (all must match)."""
    return (
        db.AnnotationQuery().name(name).datasource(GRAFANA_ANNOTATIONS).enable(True).icon_color(color)
        .target(db.AnnotationTarget().type("tags").tags(tags).match_any(False).limit(100))
    )


def all_variable(name: str, label: str, ds: dm.DataSourceRef, query: str) -> db.QueryVariable:
    """A multi-select Prometheus label variable defaulting to All (`.*`), so panels
    filter with `label=~"$name"` and still match series that lack the label."""
    return (
        db.QueryVariable(name).label(label).datasource(ds)
        .query(query).multi(True).include_all(True).all_value(".*")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


def custom_variable(name: str, label: str, values: list[str], default: str) -> db.CustomVariable:
    return (
        db.CustomVariable(name).label(label).values(",".join(values))
        .current(dm.VariableOption(selected=True, text=default, value=default))
    )


# --------------------------------------------------------------------------- finalize
def finalize(dashboard: db.Dashboard) -> dict[str, Any]:
    """The dashboard model as Grafana stores it, with unique ids and complete targets."""
    return finalize_keyed(dashboard, [])[0]


def finalize_keyed(dashboard: db.Dashboard, marks: Sequence[Sequence[K]]) -> tuple[dict[str, Any], dict[K, int]]:
    """`finalize`, and the id each marked panel got: a panel given the provisional id -n
    (finding_panels.PanelMarks) gets its keys `marks[n - 1]` mapped to its real id."""
    model: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    model["id"] = None
    model.setdefault("version", 0)
    model.setdefault("templating", {}).setdefault("list", [])
    _flow(model.get("panels", []))
    ids: dict[K, int] = {}
    next_id = 1
    for panel in _walk(model.get("panels", [])):
        provisional = panel.get("id")
        if isinstance(provisional, int) and 0 < -provisional <= len(marks):
            ids.update((key, next_id) for key in marks[-provisional - 1])
        panel["id"] = next_id
        next_id += 1
        targets = panel.get("targets") or []
        for i, target in enumerate(targets):
            if not target.get("refId"):
                target["refId"] = chr(ord("A") + i)
            if panel.get("datasource") and "datasource" not in target:
                target["datasource"] = dict(panel["datasource"])
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") == "custom":
            var["options"] = [
                {"text": v, "value": v, "selected": v == var.get("current", {}).get("value")}
                for v in str(var.get("query", "")).split(",")
            ]
    return model, ids


def _flow(panels: list[dict[str, Any]]) -> None:
    """Lay panels out left to right, wrapping before a panel would cross the 24-column
    edge (the SDK wraps only after), rows across the full width."""
    x = y = row_h = 0
    for p in panels:
        gp = p.setdefault("gridPos", {})
        w, h = min(int(gp.get("w") or 12), 24), int(gp.get("h") or 8)
        if p.get("type") == "row" or x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        if p.get("type") == "row":
            p["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            continue
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x, row_h = x + w, max(row_h, h)


def _walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _walk(p.get("panels") or [])


# --------------------------------------------------------------------------- reading back
@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel, as Grafana would send it to the data source."""

    dashboard_uid: str
    panel_id: int
    panel_title: str
    datasource_type: str  # prometheus | loki | tempo
    expr: str
    instant: bool = False


def panel_queries(model: dict[str, Any]) -> list[PanelQuery]:
    """Every PromQL/LogQL/TraceQL expression in a finalized dashboard."""
    out: list[PanelQuery] = []
    for panel in _walk(model.get("panels", [])):
        for t in panel.get("targets") or []:
            ds = (t.get("datasource") or panel.get("datasource") or {}).get("type", "")
            expr = t.get("expr") if ds in ("prometheus", "loki") else t.get("query")
            if expr:
                out.append(PanelQuery(model.get("uid", ""), panel["id"], panel.get("title", ""), ds, expr,
                                      bool(t.get("instant")) and not t.get("range")))
    return out


def variable_defaults(model: dict[str, Any]) -> dict[str, str]:
    """What each template variable expands to when the dashboard opens with its defaults."""
    values: dict[str, str] = {}
    for var in model.get("templating", {}).get("list", []):
        current = var.get("current") or {}
        value = current.get("value")
        if isinstance(value, list):
            value = value[0] if value else ""
        if value in ("$__all", "All") and var.get("includeAll"):
            value = var.get("allValue") or ".*"
        values[var["name"]] = str(value if value is not None else "")
    return values


_VAR_REF = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def render(expr: str, variables: dict[str, str], *, rate_interval: str = "5m", interval: str = "1m",
           range_: str = "1h") -> str:
    """Expand template variables and Grafana's interval macros the way Grafana does
    before it sends a query (single-value form)."""
    builtins = {"__rate_interval": rate_interval, "__interval": interval, "__range": range_, "__auto": interval}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        return m.group(0)

    return _VAR_REF.sub(sub, expr)
