"""The demo's delayed-label story: a churn classifier whose accuracy drops while its scores
and features do not move, so only the labels, arriving 30-60 minutes late, can tell.

  06:00-08:00  the reference period: accuracy about 0.9.
  10:00-11:00  a competitor's offer makes one-year-contract customers leave whatever the
               model said (a concept shift: same inputs, same scores, other outcomes).
  ~11:15       half of that hour's labels are in (`min_labels: 600`): realised accuracy is
               more than 10 % below the reference -> critical incident for the churn owner,
               with the CBPE estimate beside it (still about 0.86: an estimate cannot see a
               concept shift), the label coverage and delay.
  ~12:15       the next hour's labels show accuracy back to normal -> resolved.

Self-contained: its own model block in vigil.yaml, its own files and random stream, so
the recommender's story is unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

CHURN = "churn"
H = 3600.0
SHIFT_AFTER_START_S = 2 * H  # 10:00: two hours into the replay
SHIFT_S = H
PER_MINUTE = 20
LABEL_DELAY_S = (30 * 60, 60 * 60)


class DemoTimes(Protocol):
    """What this story needs of the demo's times (monitor.replay.demo.DemoTimes)."""

    @property
    def data_start(self) -> float: ...
    @property
    def replay_start(self) -> float: ...
    @property
    def replay_end(self) -> float: ...


def shift_span(times: DemoTimes) -> tuple[float, float]:
    """When the concept shift hits the predictions: 10:00-11:00."""
    start = times.replay_start + SHIFT_AFTER_START_S
    return start, start + SHIFT_S


def _iso(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def churn_config(times: DemoTimes) -> str:
    """The churn model's block of the demo's `models:` list."""
    return f"""\
  - name: {CHURN}
    alias: champion
    owner_channel: "#churn-owners"
    samples:
      path: churn_samples/
    reference:
      path: reference/churn_train.parquet
    features: [tenure, monthly_charges, {{name: contract, type: categorical}}]
    prediction_column: churn_score
    performance:          # delayed labels: did the customer actually leave?
      task: classification
      prediction_column: churn_pred
      probability_column: churn_score
      labels:
        path: churn_labels/
      reference: {{start: "{_iso(times.data_start)}", end: "{_iso(times.replay_start)}"}}
      window: 1h
      horizon: 5h
      min_labels: 600
      drop_pct: 10
"""


def _customers(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and the calibrated churn probability they imply."""
    z = rng.normal(0, 3.5, n)
    contract = np.where(z + rng.normal(0, 2.5, n) > 0.5, "month-to-month",
                        np.where(rng.random(n) < 0.5, "one-year", "two-year"))
    f = pd.DataFrame({"tenure": np.clip(30 - 6 * z + rng.normal(0, 6, n), 0, 72).round(0),
                      "monthly_charges": (70 + 8 * z + rng.normal(0, 10, n)).round(2), "contract": contract})
    return f, 1 / (1 + np.exp(-z))


def _write_predictions(out: Path, rng: np.random.Generator, times: DemoTimes) -> pd.DataFrame:
    minutes = np.arange(times.data_start, times.replay_end + 60, 60.0)
    ts = np.repeat(minutes, PER_MINUTE) + rng.uniform(0, 60, len(minutes) * PER_MINUTE)
    f, p = _customers(rng, len(ts))
    churned = rng.random(len(ts)) < p
    a, b = shift_span(times)
    shifted = (ts >= a) & (ts < b) & (f["contract"].to_numpy() == "one-year")
    churned = np.where(shifted, rng.random(len(ts)) < 0.9, churned)
    f["churn_score"] = p.round(4)
    f["churn_pred"] = (p >= 0.5).astype(int)
    f["model_version"] = "1"
    f.insert(0, "prediction_id", [f"c{i:06d}" for i in range(len(ts))])
    f.insert(0, "timestamp", pd.to_datetime(ts, unit="s", utc=True))
    (out / "churn_samples").mkdir(parents=True, exist_ok=True)
    f.to_parquet(out / "churn_samples" / "predictions.parquet", index=False)
    return pd.DataFrame({"prediction_id": f["prediction_id"], "label": churned.astype(int),
                         "timestamp": ts + rng.uniform(*LABEL_DELAY_S, len(ts))})


def _write_labels(out: Path, labels: pd.DataFrame) -> None:
    """One file per hour of arrival, as a nightly CRM export would drop them."""
    (out / "churn_labels").mkdir(parents=True, exist_ok=True)
    hour = (labels["timestamp"] // H) * H
    for h, part in labels.groupby(hour):
        stamp = pd.Timestamp(h, unit="s", tz="UTC").strftime("%Y%m%dT%H")
        part.assign(timestamp=pd.to_datetime(part["timestamp"], unit="s", utc=True)).to_parquet(
            out / "churn_labels" / f"{stamp}.parquet", index=False)


def _registry_events(times: DemoTimes) -> list[dict[str, object]]:
    month_ago = times.replay_start - 30 * 86400
    return [
        {"type": "model", "name": CHURN, "at": month_ago - 3600, "description": "Customer churn classifier"},
        {"type": "version", "name": CHURN, "version": "1", "at": month_ago - 1800, "tags": {"git_sha": "91c0d2e"}},
        {"type": "alias", "name": CHURN, "alias": "champion", "version": "1", "at": month_ago},
    ]


def write_churn(out: Path, seed: int, times: DemoTimes) -> None:
    """The churn model's samples, labels, training reference and registry events."""
    rng = np.random.default_rng(seed + 1000)  # its own stream: the recommender's data stay as they were
    labels = _write_predictions(out, rng, times)
    _write_labels(out, labels)
    f, p = _customers(rng, 5000)
    f["churn_score"] = p.round(4)
    (out / "reference").mkdir(parents=True, exist_ok=True)
    f.to_parquet(out / "reference" / "churn_train.parquet", index=False)
    with open(out / "registry.jsonl", "a") as fh:
        for e in _registry_events(times):
            fh.write(json.dumps(e) + "\n")
