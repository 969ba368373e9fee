"""Each way an answer can carry a line's trace: Loki's stream labels, the object Loki nests
under `structuredMetadata` when asked with `categorize-labels`, and the flat third element
our contract notes describe. A trace id lost here unlinks the line from its spans."""
from __future__ import annotations

import httpx
import pytest

from monitor.sources.loki import _entries, _record

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _answer(values: list, stream: dict) -> httpx.Response:
    body = {"status": "success", "data": {"resultType": "streams", "result": [{"stream": stream, "values": values}]}}
    return httpx.Response(200, json=body)


@pytest.mark.parametrize("stream, third", [
    ({"service": "checkout", "trace_id": TRACE}, None),
    ({"service": "checkout"}, {"trace_id": TRACE}),
    ({"service": "checkout"}, {"structuredMetadata": {"trace_id": TRACE}, "parsed": {"level": "error"}}),
], ids=["stream labels", "flat third element", "categorize-labels"])
def test_a_lines_trace_id_is_read_whichever_way_the_answer_carries_it(stream: dict, third: dict | None) -> None:
    value = ["1700000000000000000", "payment refused"] + ([third] if third is not None else [])
    [(ns, line, labels, meta)] = _entries(_answer([value], stream), '{service="checkout"}')
    record = _record(ns, line, labels, meta, "service")
    assert (record.service, record.trace_id, record.line) == ("checkout", TRACE, "payment refused")
    assert "structuredMetadata" not in record.labels


def test_an_empty_categorized_object_carries_no_labels() -> None:
    [(_, _, _, meta)] = _entries(_answer([["1", "ok", {}]], {"service": "a"}), "q")
    assert meta == {}
