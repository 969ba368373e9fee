"""The rows of a Prometheus query answer, checked against the HTTP API's documented shape.

A Prometheus-compatible store, or a proxy before one, may answer something else: a value
that is no number, a point without its value, a `vector` where a range query asked for a
`matrix`, a scalar where rows were expected. Each is named here by where it sits
(`data.result[2].values[7]`) and what was expected (`MalformedAnswer`, which the client
reports as the query's source being unavailable with that reason), never an internal
error that cost the model's other signals of the family.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

Row = tuple[dict[str, str], np.ndarray, np.ndarray]  # labels, timestamps (s), values


class MalformedAnswer(ValueError):
    """An answer not in the shape of the Prometheus HTTP API: where, and what was expected."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def answer_data(body: Any) -> Any:
    """`data` of a 200 answer's JSON body."""
    if not isinstance(body, dict):
        raise MalformedAnswer(f"body: expected a JSON object, got {_show(body)}")
    if body.get("status") == "error":
        raise MalformedAnswer(f"status: error ({body.get('errorType')}: {_show(body.get('error'))}) in a 200 answer")
    if "data" not in body:
        raise MalformedAnswer("data: missing")
    return body["data"]


def _result(data: Any, types: tuple[str, ...]) -> tuple[str | None, Any]:
    if not isinstance(data, dict):
        raise MalformedAnswer(f"data: expected an object, got {_show(data)}")
    kind = data.get("resultType")
    if kind is not None and kind not in types:
        raise MalformedAnswer(f"data.resultType: expected {' or '.join(types)}, got {_show(kind)}")
    return kind, data.get("result")


def range_rows(data: Any) -> list[Row]:
    """A range query's rows (`matrix`); a row of native histograms only is skipped, logged."""
    _, result = _result(data, ("matrix",))
    return _rows(result, "values")


def instant_rows(data: Any) -> list[Row] | str:
    """An instant query's rows: a vector's (one point each), a range selector's (`matrix`),
    a scalar as one row without labels; a `string` result is its text."""
    kind, result = _result(data, ("vector", "matrix", "scalar", "string"))
    if kind in ("scalar", "string") or (kind is None and isinstance(result, list) and result
                                        and not isinstance(result[0], dict)):
        if not (isinstance(result, list) and len(result) == 2):
            raise MalformedAnswer(f"data.result: expected [time, \"value\"], got {_show(result)}")
        if kind == "string":
            return str(result[1])
        ts, vals = _points([result], "data.result", one=True)
        return [({}, ts, vals)]
    return _rows(result, "values" if kind == "matrix" else "value")


def _rows(result: Any, key: str) -> list[Row]:
    if result is None:
        return []
    if not isinstance(result, list):
        raise MalformedAnswer(f"data.result: expected a list of series, got {_show(result)}")
    out = []
    for i, row in enumerate(result):
        where = f"data.result[{i}]"
        if not isinstance(row, dict):
            raise MalformedAnswer(f"{where}: expected an object with metric and {key}, got {_show(row)}")
        metric = row.get("metric") or {}
        if not isinstance(metric, dict) or not set(map(type, metric.values())) <= {str}:
            raise MalformedAnswer(f"{where}.metric: expected an object of text labels, got {_show(metric)}")
        if key not in row and ("values" in row or "value" in row):
            key = "values" if "values" in row else "value"  # a range selector in an instant query
        if key not in row:
            if "histogram" in row or "histograms" in row:  # native histograms are not float series
                log.warning("prometheus row without float values skipped", extra={"labels": metric})
                continue
            raise MalformedAnswer(f"{where}: expected {key!r} ([time, \"value\"] points), got keys {sorted(row)}")
        one = key == "value"
        ts, vals = _points([row[key]] if one else row[key], f"{where}.{key}", one=one)
        out.append((dict(metric), ts, vals))
    return out


def _points(values: Any, where: str, one: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """[[time, "value"], ...] -> (timestamps, values); "NaN", "+Inf" and "-Inf" are numbers.
    `one`: `values` holds the one point `where` names (a vector's `value`). Read at numpy's
    pace and looked into only when that fails: a check per point first made a sweep's 2
    million points 80 % slower to read."""
    if not isinstance(values, list):
        raise MalformedAnswer(f"{where}: expected [time, \"value\"]{'' if one else ' points'}, got {_show(values)}")
    n = len(values)
    try:
        ts = np.fromiter((p[0] for p in values), dtype=np.float64, count=n)
        # numpy parses Prometheus's "NaN", "+Inf" and "-Inf" spellings.
        vals = np.array([p[1] for p in values], dtype=np.str_).astype(np.float64) if n else np.empty(0)
    except (TypeError, ValueError, IndexError, KeyError):
        raise MalformedAnswer(_first_bad(values, where, one)) from None
    if not np.isfinite(ts.sum()):  # one reduction: every point's time is finite when their sum is
        j = int(np.flatnonzero(~np.isfinite(ts))[0])
        raise MalformedAnswer(f"{_at(where, j, one)}: expected a time in seconds, got {_show(values[j][0])}")
    return ts, vals


def _at(where: str, j: int, one: bool) -> str:
    return where if one else f"{where}[{j}]"


def _first_bad(values: list[Any], where: str, one: bool) -> str:
    for j, p in enumerate(values):
        if type(p) is not list or len(p) != 2:
            return f"{_at(where, j, one)}: expected [time, \"value\"]{'' if one else ' points'}, got {_show(p)}"
        t, v = p
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            return f"{_at(where, j, one)}: expected a time in seconds, got {_show(t)}"
        try:
            float(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else float("x")
        except ValueError:
            return f"{_at(where, j, one)}: expected a number as text (\"0.5\", \"NaN\", \"+Inf\"), got {_show(v)}"
    return f"{where}: unreadable points"



def ordered(ts: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """The points in time order, each time once (the first answered), and whether they had to be:
    Prometheus answers them so, but a store or proxy merging answers may not, and read as given
    the oldest point was taken for the newest (a live series read as stopped 90 minutes ago,
    and its breach unseen)."""
    if len(ts) < 2 or bool((np.diff(ts) > 0).all()):
        return ts, vals, False
    order = np.argsort(ts, kind="stable")
    ts, vals = ts[order], vals[order]
    keep = np.concatenate(([True], np.diff(ts) > 0))
    return ts[keep], vals[keep], True
