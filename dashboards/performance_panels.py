"""The performance row of a model's dashboard: realised (from delayed labels) beside
estimated (CBPE) per metric, against the reference, and the labels' coverage and delay.
Drawn only for models with `performance` configured, from Vigil's own /metrics."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .builder import DataSourceRefs, ValueStyle, matchers, prom_target, quote, stat_panel, timeseries_panel
from .spec import PerformanceSpec


def performance_query(model: str, metric: str, basis: str) -> str:
    sel = matchers(f"model={quote(model)}", f"metric={quote(metric)}", f"basis={quote(basis)}")
    return f"max(vigil_model_performance{sel})"


def coverage_query(model: str) -> str:
    return f"max(vigil_label_coverage_ratio{matchers(f'model={quote(model)}')})"


def delay_query(model: str) -> str:
    return f"max(vigil_label_delay_seconds{matchers(f'model={quote(model)}')})"


def performance_row(d: db.Dashboard, model: str, spec: PerformanceSpec, ds: DataSourceRefs) -> db.Dashboard:
    d = d.with_row(db.Row("Performance (delayed labels)"))
    worse = "rises" if spec.task == "regression" else "falls"
    for metric in spec.metrics:
        targets = [prom_target(performance_query(model, metric, b), b) for b in ("realised", "estimated", "reference")]
        d = d.with_panel(timeseries_panel(
            f"{metric}: realised vs estimated", ds.prom, targets, ValueStyle("short"), width=8, height=6,
            description=(f"Realised {metric} of the newest window with enough labels, the CBPE estimate of the "
                         f"newest window, and the reference. Vigil alerts when the realised figure {worse} "
                         f"{spec.drop_pct:g}% past the reference (critical) or the estimate does (warning).")))
    d = d.with_panel(stat_panel("Label coverage", ds.prom, [prom_target(coverage_query(model), "coverage",
                                                                       instant=True)],
                                ValueStyle("percentunit", steps=[(None, "red"), (0.5, "orange"), (0.8, "green")]),
                                description="Share of the judged window's predictions that have a label."))
    return d.with_panel(stat_panel("Label delay (median)", ds.prom, [prom_target(delay_query(model), "delay",
                                                                                 instant=True)],
                                   ValueStyle("s"), description="Median time from a prediction to its label."))
