"""GPU saturation from DCGM and vLLM series: sustained runs past a limit."""
from __future__ import annotations

from dataclasses import dataclass

from detectors.records import Direction, Finding, FindingKind, Series
from detectors.runs import runs_past


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
) -> list[Finding]:
    """One finding per GPU/pod whose signal stayed at or past its limit for `min_duration`.

    Every run in the window counts, not only the trailing one: the correlator needs
    to know that saturation overlapped an SLO breach even if it has just ended.
    """
    out: list[Finding] = []
    for s in series:
        s = s.between(window_start, window_end)
        if s.empty:
            continue
        runs = [r for r in runs_past(s.timestamps, s.values, signal.limit * (1 - 1e-9), above=True)
                if r.duration >= min_duration]
        if not runs:
            continue
        run = max(runs, key=lambda r: r.duration)
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
