"""Checks across sections of vigil.yaml: names one section gives and another uses, and
periods that must fit one another. Each returns every problem it finds, as (where in the
YAML, what was expected), so `vigil check-config` lists them all at once, each on its line
(monitor/config.py raises the first when a model is built in code)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monitor.config_receivers import receiver_problems

Loc = tuple[str | int, ...]
Problems = list[tuple[Loc, str]]
ANY = "*"  # what a check reads: every item of the list together (names unique, names known)
EACH = "each"  # or each item on its own: one dropped as broken hides nothing about the others


def cross_problems(cfg: Any, broken: Sequence[Loc] = ()) -> Problems:
    """Every cross-section problem of a `VigilConfig` (its fields already valid). `broken`:
    the fields that failed validation (monitor/config_loading.py validates the rest again
    without them): a check reading one of them is not run, the others are."""
    return [p for check, reads in _CHECKS if not _touches(broken, reads) for p in check(cfg)]


def _touches(broken: Sequence[Loc], reads: Sequence[Loc]) -> bool:
    """Whether a broken field is, holds or lies inside something a check reads. A broken
    list item itself (`models[1]`: left out whole) touches only what reads every item."""
    def same(a: str | int, b: str | int) -> bool:
        return a == b or b in (ANY, EACH) and isinstance(a, int)

    def touches(bad: Loc, read: Loc) -> bool:
        if len(bad) == 2 and isinstance(bad[1], int) and len(read) > 1 and read[1] == EACH:
            return False
        return all(same(a, b) for a, b in zip(bad, read, strict=False))

    return any(touches(bad, read) for bad in broken for read in reads)


def _unique_models(cfg: Any) -> Problems:
    names = [m.name for m in cfg.models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    return [(("models",), f"model names must be unique, repeated: {', '.join(dupes)}")] if dupes else []


def _time_intervals(cfg: Any) -> Problems:
    out: Problems = []
    known = [t.name for t in cfg.time_intervals]
    if len(set(known)) != len(known):
        out.append((("time_intervals",), "names must be unique"))
    for where, wanted in [(("grouping", "mute_time_intervals"), cfg.grouping.mute_time_intervals)] + [
            (("models", i, "mute_time_intervals"), m.mute_time_intervals) for i, m in enumerate(cfg.models)]:
        missing = [n for n in wanted if n not in known]
        if missing:
            out.append((where, f"unknown time interval {missing[0]!r}; "
                               f"defined in time_intervals: {', '.join(known) or 'none'}"))
    return out


def _signal_names(cfg: Any) -> Problems:
    """A model's KPIs under one name each, and its SLOs: a cycle looks a KPI (an SLO) up by
    its name, so two alike were both judged on the last one's series, the other's drop
    never seen. (A KPI and an SLO may share one: each keeps its own state.)"""
    out: Problems = []
    for i, m in enumerate(cfg.models):
        for section, what in (("kpis", "KPI"), ("slos", "SLO")):
            seen: set[str] = set()
            for j, sig in enumerate(getattr(m, section)):
                if sig.name in seen:
                    out.append((("models", i, section, j, "name"),
                                f"{sig.name!r} names another {what} of this model: give each its own name"))
                seen.add(sig.name)
    return out


def _receivers(cfg: Any) -> Problems:
    return receiver_problems(cfg.receivers, {m.name for m in cfg.models})


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


def _fleet_cap_is_fleet_wide(cfg: Any) -> Problems:
    """The fleet's cap counts every model's rollbacks: a model's own policy (merged over the
    global one) differing there would cap nothing, or everything, for that model alone."""
    top = cfg.policy.rollback
    out: Problems = []
    for i, m in enumerate(cfg.models):
        mine = m.policy.rollback if m.policy is not None else top
        for key in ("fleet_max", "fleet_window"):
            if getattr(mine, key) != getattr(top, key):
                out.append((("models", i, "policy", "rollback", key),
                            f"fleet-wide: set it in the top-level policy.rollback, not in a model's policy "
                            f"(got {getattr(mine, key)} here, {getattr(top, key)} there)"))
    return out


_CHECKS: list[tuple[Callable[[Any], Problems], tuple[Loc, ...]]] = [
    (_unique_models, (("models", ANY, "name"),)),
    (_time_intervals, (("time_intervals", ANY, "name"), ("grouping", "mute_time_intervals"),
                       ("models", EACH, "mute_time_intervals"))),
    (_signal_names, (("models", EACH, "kpis", ANY, "name"), ("models", EACH, "slos", ANY, "name"))),
    (_receivers, (("receivers", ANY, "name"), ("receivers", ANY, "models"), ("models", ANY, "name"))),
    (_samples_outlive_the_window, (("schedule", "lookback"), ("schedule", "baseline"), ("retention", "samples"))),
    (_anomaly_bins_fit_the_window, (("schedule", "lookback"), ("schedule", "interval"),
                                    ("policy", "anomaly_resolution"),
                                    ("models", EACH, "policy", "anomaly_resolution"))),
    (_fleet_cap_is_fleet_wide, (("policy", "rollback"), ("models", EACH, "policy", "rollback"))),
]


def said(problem: tuple[Loc, str]) -> str:
    """One problem as a line without the file: `models.0.policy.anomaly_resolution: expected ...`."""
    loc, msg = problem
    return ".".join(str(p) for p in loc) + ": " + msg if loc else msg
