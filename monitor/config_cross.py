"""Checks across sections of vigil.yaml: names one section gives and another uses, and
periods that must fit one another. Each returns every problem it finds, as (where in the
YAML, what was expected), so `vigil check-config` lists them all at once, each on its line
(monitor/config.py raises the first when a model is built in code)."""
from __future__ import annotations

from typing import Any

from monitor.config_receivers import receiver_problems

Loc = tuple[str | int, ...]


def cross_problems(cfg: Any) -> list[tuple[Loc, str]]:
    """Every cross-section problem of a `VigilConfig` (its fields already valid)."""
    return [*_names(cfg), *_samples_outlive_the_window(cfg), *_anomaly_bins_fit_the_window(cfg)]


def _names(cfg: Any) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    names = [m.name for m in cfg.models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append((("models",), f"model names must be unique, repeated: {', '.join(dupes)}"))
    known = [t.name for t in cfg.time_intervals]
    if len(set(known)) != len(known):
        out.append((("time_intervals",), "names must be unique"))
    for where, wanted in [(("grouping", "mute_time_intervals"), cfg.grouping.mute_time_intervals)] + [
            (("models", i, "mute_time_intervals"), m.mute_time_intervals) for i, m in enumerate(cfg.models)]:
        missing = [n for n in wanted if n not in known]
        if missing:
            out.append((where, f"unknown time interval {missing[0]!r}; "
                               f"defined in time_intervals: {', '.join(known) or 'none'}"))
    return [*out, *receiver_problems(cfg.receivers, set(names))]


def _samples_outlive_the_window(cfg: Any) -> list[tuple[Loc, str]]:
    """A cycle reads samples back lookback + baseline: purging sooner would blind drift detection."""
    need = cfg.schedule.lookback + cfg.schedule.baseline
    kept = cfg.retention.samples
    if kept is not None and kept < need:
        return [(("retention", "samples"), f"expected at least schedule.lookback + schedule.baseline "
                                           f"({need:.0f} s), the window a cycle reads samples from (got {kept:.0f} s)")]
    return []


def _anomaly_bins_fit_the_window(cfg: Any) -> list[tuple[Loc, str]]:
    """The bin still open at one cycle must lie inside the next cycle's window, or it is lost.
    Checked when set; the default shrinks to fit instead (monitor/cycle/detect.py)."""
    room = cfg.schedule.lookback - cfg.schedule.interval
    out: list[tuple[Loc, str]] = []
    for where, p in [(("policy",), cfg.policy)] + [(("models", i, "policy"), m.policy)
                                                    for i, m in enumerate(cfg.models)]:
        if p is not None and "anomaly_resolution" in p.model_fields_set and p.anomaly_resolution > max(room, 0.0):
            out.append(((*where, "anomaly_resolution"),
                        f"expected at most schedule.lookback - schedule.interval ({room:.0f} s) "
                        f"(got {p.anomaly_resolution:.0f} s; the default is 300 s, 0 turns binning off)"))
    return out


def said(problem: tuple[Loc, str]) -> str:
    """One problem as a line without the file: `models.0.policy.anomaly_resolution: expected ...`."""
    loc, msg = problem
    return ".".join(str(p) for p in loc) + ": " + msg if loc else msg
