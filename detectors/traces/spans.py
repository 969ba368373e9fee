"""Spans as one table: self time, the parent's service and operation, client (edge) spans.

- Self (exclusive) time: a span's duration minus the time of its children. A caller
  that waits on a slow callee keeps its self time; only the callee's grows.
- Edge (network) time: a span whose children run in another service is the caller's
  client span; its self time is time on the wire and in the callee's queue.
- Error origin: an error span none of whose children failed is where an error starts.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from detectors.records import Span
from detectors.tables import Kind

# What the checks read of the reference's spans: the fitted state keeps these columns.
REFERENCE_COLUMNS: dict[str, Kind] = {
    "service": "str", "operation": "str", "dur_ms": "float", "self_ms": "float", "parent_service": "str",
    "parent_operation": "str", "callee": "str", "is_client": "bool", "remote_child": "bool", "error": "bool",
    "error_origin": "bool",
    # The parent run (trace and parent span) and the trace of each span, as numbers: how
    # calls cluster (checks._dispersion). A state stored without them reads them as NaN.
    "run": "float", "trace": "float",
}
OPTIONAL_COLUMNS = ("run", "trace")


# Attributes naming the far end of an outgoing call (OpenTelemetry semantic conventions,
# newest first): a call that failed with no span from its callee names only there whom it called.
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name", "url.full", "http.url")


def _peer(attributes: dict) -> str | None:
    return next((str(attributes[k]) for k in _PEER_KEYS if attributes.get(k)), None)


def span_frame(spans: Sequence[Span]) -> pd.DataFrame:
    n = len(spans)
    return pd.DataFrame({
        "trace_id": pd.Series([s.trace_id for s in spans], dtype=object),
        "span_id": pd.Series([s.span_id for s in spans], dtype=object),
        "parent_id": pd.Series([s.parent_id for s in spans], dtype=object),
        "service": pd.Series([s.service for s in spans], dtype=object),
        "operation": pd.Series([s.operation for s in spans], dtype=object),
        "start_ns": np.fromiter((s.start_ns for s in spans), np.int64, n),
        "end_ns": np.fromiter((s.end_ns for s in spans), np.int64, n),
        "error": np.fromiter((s.error for s in spans), bool, n),
        "peer": pd.Series([_peer(s.attributes) if s.attributes else None for s in spans], dtype=object),
    })


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Adds self time, the parent's service/operation, and client-span (edge) marks."""
    df = df.copy()
    # A span naming itself as parent (broken instrumentation, a bad id conversion) is a
    # root: read as its own child it would be a call of itself and eat its own time.
    df["parent_id"] = df["parent_id"].where(df["parent_id"] != df["span_id"], None)
    df["dur_ms"] = (df["end_ns"] - df["start_ns"]).clip(lower=0) / 1e6
    key = df["trace_id"] + ":" + df["span_id"]
    pkey = df["trace_id"] + ":" + df["parent_id"].fillna("")
    has_parent = df["parent_id"].notna().to_numpy()
    child_sum = df.loc[has_parent].groupby(pkey[has_parent])["dur_ms"].sum()
    df["self_ms"] = (df["dur_ms"] - key.map(child_sum).fillna(0.0)).clip(lower=0.0)
    idx = pd.Series(np.arange(len(df)), index=key.to_numpy())
    idx = idx[~idx.index.duplicated()]
    ppos = pkey.map(idx)
    ok = ppos.notna().to_numpy()
    pp = ppos[ok].astype(int).to_numpy()
    for col in ("service", "operation"):
        vals = np.full(len(df), None, dtype=object)
        vals[ok] = df[col].to_numpy()[pp]
        df["parent_" + col] = vals
    remote = ok & (df["parent_service"].to_numpy() != df["service"].to_numpy())
    # The parent of a remote child is the caller's client span: mark it as an edge.
    callee = pd.Series(df["service"].to_numpy()[remote], index=pkey[remote].to_numpy())
    callee = callee[~callee.index.duplicated()]
    df["callee"] = key.map(callee)
    df["is_client"] = df["callee"].notna()
    df["remote_child"] = remote
    # Errors that start here: the span failed and none of its children did.
    err_child = df.loc[has_parent & df["error"].to_numpy()].groupby(pkey[has_parent & df["error"].to_numpy()]).size()
    df["error_origin"] = df["error"] & ~key.isin(err_child.index)
    df["leaf"] = ~key.isin(pkey[has_parent])  # no span has it for parent
    df["run"] = np.where(has_parent, pd.factorize(pkey)[0], -1).astype(float)
    df.loc[~has_parent, "run"] = np.nan
    df["trace"] = pd.factorize(df["trace_id"])[0].astype(float)
    return df

