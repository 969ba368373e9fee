"""`POST /v1/labels`: ground truth that arrived after the prediction, joined to it by id.

A batch is accepted whole or rejected whole, every bad field named (`labels[i].<field>`),
like samples. A label sent again for the same prediction replaces the first. Role ingest
(the serving side's token), operator or admin.
"""
from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter

from monitor.api.deps import AUTH_RESPONSES, IngestDep, VigilDep, in_scope, model_or_404
from monitor.api.errors import FieldError
from monitor.api.ingest import MAX_ABS_NUMBER, MAX_EPOCH_S, MAX_ERRORS, InvalidRecords, parse_timestamps
from monitor.api.responses import errors
from monitor.api.schemas import LabelIn, LabelsAccepted, LabelsRequest
from monitor.config import ModelConfig
from monitor.store.labels import Label

router = APIRouter(tags=["labels"], responses=AUTH_RESPONSES)
MAX_ID_CHARS = 200  # the store's prediction_id column


def _label_problem(value: float | bool, task: str, positive: float) -> str | None:
    v = float(value)
    if not math.isfinite(v) or abs(v) > MAX_ABS_NUMBER:
        return f"expected a finite number within +-{MAX_ABS_NUMBER} (2^53), got {value!r}"
    if task == "classification" and v not in (0.0, 1.0, positive):
        return f"expected a class: 0 or 1 (or {positive:g}, the positive class), got {value!r}"
    return None


def validate_labels(m: ModelConfig, items: list[LabelIn]) -> list[Label]:
    """Labels with epoch-second times as sent, or InvalidRecords naming each bad field as
    labels[i].<name>. A time after the server's clock is read as the first arrival by the
    store (monitor/store/labels.Labels.add), which remembers it for a retry."""
    perf = m.performance
    if perf is None:
        raise FieldError("model", f"model {m.name!r} has no `performance` configured: its labels would never be "
                                  "used")
    ts = parse_timestamps([it.timestamp for it in items])
    bad: list[dict[str, str]] = []
    for i, it in enumerate(items):
        if len(str(it.prediction_id)) > MAX_ID_CHARS:
            bad.append({"field": f"labels[{i}].prediction_id",
                        "message": f"expected at most {MAX_ID_CHARS} characters (digits of an integer id)"})
        problem = _label_problem(it.label, perf.task, perf.positive_class)
        if problem:
            bad.append({"field": f"labels[{i}].label", "message": problem})
        if not (math.isfinite(ts[i]) and 0 <= ts[i] < MAX_EPOCH_S):
            bad.append({"field": f"labels[{i}].timestamp",
                        "message": f"expected RFC3339 or epoch seconds between 1970 and 9999, got {it.timestamp!r}"})
        if len(bad) >= MAX_ERRORS:
            break
    if bad:
        raise InvalidRecords(bad[:MAX_ERRORS])
    return [Label(str(it.prediction_id), float(it.label), float(ts[i])) for i, it in enumerate(items)]


@router.post("/v1/labels", status_code=202, response_model=LabelsAccepted, responses=errors(404, 422))
def labels(who: IngestDep, vigil: VigilDep, body: LabelsRequest) -> dict[str, Any]:
    m = model_or_404(vigil, body.model)
    in_scope(vigil, who, m.name, "labels")
    now = vigil.now()
    accepted = validate_labels(m, body.labels)
    n = vigil.store.labels.add(m.name, accepted, now, posted=True)
    vigil.metrics.labels_received.labels(m.name).inc(n)
    return {"accepted": n, "model": m.name}
