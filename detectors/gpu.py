"""GPU saturation from DCGM and vLLM series: sustained runs past a limit."""
from __future__ import annotations

from dataclasses import dataclass

from detectors.records import Direction, Finding, FindingKind, Series
from detectors.runs import runs_past, trailing_run


@dataclass(frozen=True)
class GpuSignal:
    """One saturation signal: which series and the limit past which it saturates."""

    name: str  # "gpu_util_pct", "fb_used_ratio", "kv_cache_ratio", "requests_waiting"
    limit: float
    unit: str = ""


def detect_gpu_saturation(
    series: list[Series],
    signal: GpuSignal,
    *,
    model: str | None,
    window_start: float,
    window_end: float,
    min_duration: float,
    step: float = 60.0,
) -> list[Finding]:
    """One finding per GPU/pod whose signal is at or past its limit now and has been for
    at least `min_duration`. Only the trailing run counts: a saturation that ended is
    history, which the open incident keeps (its findings are merged across cycles).
    """
    out: list[Finding] = []
    for s in series:
        s = s.between(window_start, window_end)
        if s.empty:
            continue
        run = trailing_run(runs_past(s.timestamps, s.values, signal.limit * (1 - 1e-9), above=True),
                           window_end, tolerance=2 * step)
        if run is None or run.duration < min_duration:
            continue
        entity = _gpu_entity(s)
        out.append(
            Finding(
                kind=FindingKind.GPU_SATURATION,
                entity=entity,
                model=model,
                value=run.mean,
                threshold=signal.limit,
                window_start=window_start,
                window_end=window_end,
                onset=run.start,
                score=float(min(1.0, 0.6 + 0.4 * min(run.duration / (3 * min_duration), 1.0))),
                direction=Direction.UP,
                statistic=signal.name,
                message=(
                    f"{signal.name} on {entity}: mean {run.mean:.4g}{signal.unit} >= {signal.limit:.4g}{signal.unit} "
                    f"for {run.duration / 60:.0f} min (peak {run.peak:.4g}{signal.unit})"
                ),
                evidence={
                    "series": s.label_str(),
                    "saturated_from": run.start,
                    "saturated_until": run.end,
                    "minutes": run.duration / 60.0,
                    "peak": run.peak,
                    "signal": signal.name,
                },
            )
        )
    return out


def _gpu_entity(s: Series) -> str:
    lab = s.labels
    host = lab.get("Hostname") or lab.get("instance") or lab.get("node")
    gpu = lab.get("gpu")
    pod = lab.get("pod")
    parts = [p for p in (host, f"gpu {gpu}" if gpu is not None else None, pod) if p]
    return "/".join(parts) if parts else s.label_str()
