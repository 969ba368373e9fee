"""The embedded demo: a seeded scenario bundle for a recommendation model.

Timeline (UTC, on 2026-11-20; the bundle's data start two hours earlier so the first
cycles have a baseline):

  08:00-09:00  quiet: v1 has been `champion` for a month.
  09:00        v2 takes `champion`. A serving-only bug squashes its scores (training /
               serving skew), so its predictions drift and CTR drops about 12 %.
               -> critical incident, top cause the deploy -> automatic rollback to v1.
               The recorded data assume v1 is serving again from 09:10 (a recording
               cannot react to the rollback the replay performs).
  11:00-11:40  an upstream change doubles `session_length` (a unit change in the feature
               pipeline); no deploy, CTR moves about 2 % -> warning to the owner only.
  12:30-13:10  a traffic surge (3x) saturates the GPU (DCGM util ~99 %, KV cache ~97 %,
               queue 20-40) and p99 latency breaches its 0.5 s SLO -> critical, top cause
               GPU saturation, no rollback.
               The re-ranker served from the same GPU node is hit too: one page for the
               shared cause lists both models; the surge's warning turns critical, said in
               a threaded reply with the on-call group @-mentioned.
  13:10-14:00  quiet again.

A second model, the ranker, runs a canary that fails and is pulled (demo_canary.py).
A second model, `churn`, tells the delayed-label story (demo_labels.py): its accuracy
drops at 10:00 with no change its inputs or scores show, and the labels, arriving 30-60
minutes late, raise a critical incident at about 11:15.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import lognorm

from monitor.replay.demo_canary import CANARY_CONFIG, add_canary_metrics, canary_registry_events
from monitor.replay.demo_labels import churn_config, write_churn
from monitor.replay.openmetrics import OpenMetricsWriter

DAY = pd.Timestamp("2026-11-20T00:00:00Z").timestamp()
H = 3600.0


@dataclass(frozen=True)
class DemoTimes:
    data_start: float = DAY + 6 * H
    replay_start: float = DAY + 8 * H
    replay_end: float = DAY + 14 * H
    v2_registered: float = DAY + 8 * H + 50 * 60
    deploy_v2: float = DAY + 9 * H
    v2_effect_end: float = DAY + 9 * H + 10 * 60
    drift_start: float = DAY + 11 * H
    drift_end: float = DAY + 11 * H + 40 * 60
    surge_start: float = DAY + 12 * H + 30 * 60
    surge_end: float = DAY + 13 * H + 10 * 60
    quiet_from: float = DAY + 13 * H + 30 * 60  # the surge's incident has resolved by then


TIMES = DemoTimes()
MODEL = "recommender"
SECOND_MODEL = "reranker"  # shares the recommender's GPU node (a shared cause in the surge)
GPU_NODE = "gpu-node-1"
SERVICE = "recsys-api"
POD = "recsys-api-0"
COMMON = {"namespace": "ml", "env": "prod"}
BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0]
CTR_QUERY = (f'sum(rate(recsys_clicks_total{{model="{MODEL}"}}[5m]))'
             f' / sum(rate(recsys_impressions_total{{model="{MODEL}"}}[5m]))')
P99_QUERY = ('histogram_quantile(0.99, sum by (le) '
             f'(rate(http_request_duration_seconds_bucket{{service="{SERVICE}"}}[5m])))')
ERROR_RATE_QUERY = (f'sum(rate(http_requests_total{{service="{SERVICE}",code=~"5.."}}[5m]))'
                    f' / sum(rate(http_requests_total{{service="{SERVICE}"}}[5m]))')
REQUESTS_QUERY = f'sum(rate(http_requests_total{{service="{SERVICE}"}}[5m]))'

CONFIG = f"""\
# Demo scenario: one recommendation model on one GPU pod. `vigil replay --bundle DIR`
# replaces the Prometheus URL and MLflow URI below with the local servers it starts.
sources:
  prometheus:
    url: http://127.0.0.1:9090
    step: 60s
  mlflow:
    tracking_uri: sqlite:///mlflow.db
schedule:
  interval: 2m          # one cycle every two minutes
  lookback: 30m         # each cycle looks at the last 30 minutes
  baseline: 1h          # ... against the hour before that
policy:
  drift_statistic: psi
  drift_warning: 0.1
  drift_critical: 0.2
  kpi_drop_critical_pct: 5
  slo_consecutive_cycles: 3
  anomaly_resolution: 0  # every point: the recording starts 2 h before the story, and 5-minute means
                         # (the default) warm up over 150 of them, 12.5 h; the surge's early warning needs it
  rollback:
    enabled: true
    dry_run: false
    cooldown: 6h
    max_per_day: 2
    min_confidence: 0.6
slack:
  sink_path: notifications.jsonl
mentions:               # who a threaded escalation or resolve @-mentions, per severity
  critical: ["<!subteam^S0MLONCALL>"]
  warning: ["<@U0RECSYSOWNER>"]
grafana:
  # Links only: messages open the model's dashboard here, around the onset, once
  # `vigil dashboards` has provisioned a Grafana at this address.
  public_url: http://127.0.0.1:3000
models:
  - name: {MODEL}
    alias: champion
    services: [{SERVICE}]
    owner_channel: "#recsys-owners"
    oncall_channel: "#ml-oncall"
    samples:
      path: samples/
      timestamp_column: timestamp
    reference: {{}}       # the training reference path is a tag on each model version
    features:
      - user_age
      - session_length
      - item_popularity
      - {{name: device, type: categorical}}
    prediction_column: score
    kpis:
      - name: ctr
        query: {CTR_QUERY}
        bad_direction: down
    slos:
      - name: p99_latency
        query: {P99_QUERY}
        threshold: 0.5
        unit: s
      - name: error_rate
        query: {ERROR_RATE_QUERY}
        threshold: 0.01
        volume_query: {REQUESTS_QUERY}  # the requests behind the ratio: its band follows traffic
    gpu:
      selector: pod=~"{SERVICE}-.*"
      min_duration: 5m
  # A second model served from the same GPU: when that GPU saturates, both models are
  # affected, and one page for the shared cause lists them both.
  - name: {SECOND_MODEL}
    alias: champion
    owner_channel: "#ranking-owners"
    oncall_channel: "#ml-oncall"
    gpu:
      selector: Hostname="{GPU_NODE}"
      min_duration: 5m
""" + CANARY_CONFIG


def _in(t: np.ndarray, a: float, b: float) -> np.ndarray:
    return (t >= a) & (t < b)


def _features(rng: np.random.Generator, n: int, session_scale: np.ndarray | float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({
        "user_age": np.clip(rng.normal(36, 11, n), 16, 90).round(0),
        "session_length": rng.lognormal(5.0, 0.6, n) * session_scale,
        "item_popularity": rng.beta(2, 5, n),
        "device": rng.choice(["ios", "android", "web"], n, p=[0.45, 0.40, 0.15]),
    })


def _scores(rng: np.random.Generator, f: pd.DataFrame, broken: np.ndarray | bool = False) -> np.ndarray:
    # The session term is squashed through log so an upstream unit change moves inputs more than outputs.
    z = (-1.2 + 2.2 * f["item_popularity"].to_numpy() - 0.01 * (f["user_age"].to_numpy() - 36)
         + 0.15 * np.log(f["session_length"].to_numpy() / 150.0) + rng.normal(0, 0.6, len(f)))
    good = 1 / (1 + np.exp(-z))
    squashed = 0.85 + 0.1 * good  # v2's serving bug: scores collapse near the top
    return np.where(broken, squashed, good)


def _write_samples(out: Path, rng: np.random.Generator, t: DemoTimes) -> None:
    (out / "samples").mkdir(parents=True, exist_ok=True)
    per_min = 20
    minutes = np.arange(t.data_start, t.replay_end + 60, 60.0)
    for hour_start in np.arange(t.data_start, t.replay_end, H):
        mins = minutes[(minutes >= hour_start) & (minutes < hour_start + H)]
        ts = np.repeat(mins, per_min) + rng.uniform(0, 60, len(mins) * per_min)
        scale = np.where(_in(ts, t.drift_start, t.drift_end), 2.0, 1.0)
        f = _features(rng, len(ts), scale)
        f["score"] = _scores(rng, f, broken=_in(ts, t.deploy_v2, t.v2_effect_end))
        f.insert(0, "timestamp", pd.to_datetime(ts, unit="s", utc=True))
        stamp = pd.Timestamp(hour_start, unit="s", tz="UTC").strftime("%Y%m%dT%H")
        f.to_parquet(out / "samples" / f"{stamp}.parquet", index=False)


def _write_references(out: Path, rng: np.random.Generator) -> None:
    (out / "reference").mkdir(parents=True, exist_ok=True)
    for version in ("1", "2"):
        f = _features(rng, 5000)
        f["score"] = _scores(rng, f)  # offline, v2 looked as good as v1: the bug is in serving
        f.to_parquet(out / "reference" / f"train_v{version}.parquet", index=False)


def _write_registry(out: Path, t: DemoTimes) -> None:
    month_ago = t.replay_start - 30 * 86400
    events = [
        {"type": "model", "name": MODEL, "at": month_ago - 3600, "description": "Home-feed recommender",
         "tags": {"team": "recsys"}},
        {"type": "version", "name": MODEL, "version": "1", "at": month_ago - 1800,
         "tags": {"git_sha": "4f2a9c1", "vigil.reference_path": "reference/train_v1.parquet"}},
        {"type": "alias", "name": MODEL, "alias": "champion", "version": "1", "at": month_ago},
        {"type": "version", "name": MODEL, "version": "2", "at": t.v2_registered,
         "tags": {"git_sha": "b7e03d5", "vigil.reference_path": "reference/train_v2.parquet"}},
        {"type": "alias", "name": MODEL, "alias": "champion", "version": "2", "at": t.deploy_v2},
        *canary_registry_events(month_ago, DAY),
        {"type": "model", "name": SECOND_MODEL, "at": month_ago - 3600, "description": "Feed re-ranker",
         "tags": {"team": "ranking"}},
        {"type": "version", "name": SECOND_MODEL, "version": "1", "at": month_ago - 1800, "tags": {}},
        {"type": "alias", "name": SECOND_MODEL, "alias": "champion", "version": "1", "at": month_ago},
    ]
    with open(out / "registry.jsonl", "w") as fh:
        for e in events:
            fh.write(json.dumps(e) + "\n")


def _write_metrics(out: Path, rng: np.random.Generator, t: DemoTimes, seed: int = 7) -> None:
    ts = np.arange(t.data_start, t.replay_end + 60, 60.0)
    n = len(ts)
    surge = _in(ts, t.surge_start, t.surge_end)
    rps = 50 * (1 + 0.1 * np.sin(2 * np.pi * (ts - DAY) / 86400)) * np.where(surge, 3.0, 1.0)
    req = rng.poisson(rps * 60).astype(float)
    err = rng.binomial(req.astype(int), 0.002).astype(float)
    w = OpenMetricsWriter()
    svc = {**COMMON, "service": SERVICE, "pod": POD}
    w.add("http_requests_total", {**svc, "code": "200"}, ts, np.cumsum(req - err), type="counter",
          help="HTTP requests")
    w.add("http_requests_total", {**svc, "code": "500"}, ts, np.cumsum(err), type="counter", help="HTTP requests")

    median = np.where(surge, 0.42, 0.08)
    cdf = np.stack([lognorm.cdf(b, s=0.5, scale=median) for b in BUCKETS], axis=1)
    per_bucket = np.floor(req[:, None] * cdf)
    latency_sum = np.cumsum(req * median * np.exp(0.5 ** 2 / 2))
    w.add_histogram("http_request_duration_seconds", svc, ts, BUCKETS, np.cumsum(per_bucket, axis=0),
                    latency_sum, np.cumsum(req))

    impressions = req * 10
    ctr = np.full(n, 0.05) * (1 + rng.normal(0, 0.01, n))
    ctr[_in(ts, t.deploy_v2, t.v2_effect_end)] *= 0.88
    ctr[_in(ts, t.drift_start, t.drift_end)] *= 0.98
    clicks = rng.binomial(impressions.astype(int), np.clip(ctr, 0, 1)).astype(float)
    kpi = {**COMMON, "model": MODEL}
    w.add("recsys_impressions_total", kpi, ts, np.cumsum(impressions), type="counter", help="Items shown")
    w.add("recsys_clicks_total", kpi, ts, np.cumsum(clicks), type="counter", help="Items clicked")

    gpu = {**COMMON, "gpu": "0", "Hostname": GPU_NODE, "UUID": "GPU-5f1c9e7a", "pod": POD,
           "modelName": "NVIDIA H100 80GB HBM3"}
    util = np.where(surge, rng.uniform(97, 100, n), np.clip(rng.normal(45, 5, n), 0, 100)).round(0)
    fb_total = 81559.0
    fb_used = np.where(surge, rng.uniform(78000, 79500, n), rng.normal(40000, 800, n)).round(0)
    w.add("DCGM_FI_DEV_GPU_UTIL", gpu, ts, util, help="GPU utilisation (in %).")
    w.add("DCGM_FI_DEV_FB_USED", gpu, ts, fb_used, help="Framebuffer memory used (in MiB).")
    w.add("DCGM_FI_DEV_FB_FREE", gpu, ts, fb_total - fb_used, help="Framebuffer memory free (in MiB).")
    vllm = {**COMMON, "pod": POD, "model_name": MODEL}
    w.add("vllm:gpu_cache_usage_perc", vllm, ts,
          np.where(surge, rng.uniform(0.96, 0.99, n), rng.uniform(0.3, 0.5, n)), help="KV-cache usage (1 = 100%).")
    w.add("vllm:num_requests_waiting", vllm, ts,
          np.where(surge, rng.integers(20, 41, n), rng.integers(0, 3, n)).astype(float), help="Requests waiting.")
    add_canary_metrics(w, ts, DAY, seed)
    w.write(out / "metrics.om")


def generate_bundle(out: Path, seed: int = 7, times: DemoTimes = TIMES) -> Path:
    """Write the demo scenario bundle (vigil.yaml, metrics.om, registry.jsonl, samples/, reference/)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    (out / "vigil.yaml").write_text(CONFIG + churn_config(times))
    _write_registry(out, times)
    _write_references(out, rng)
    _write_samples(out, rng, times)
    _write_metrics(out, rng, times, seed)
    write_churn(out, seed, times)  # the delayed-label accuracy drop (demo_labels.py)
    (out / "bundle.json").write_text(json.dumps({"start": times.replay_start, "end": times.replay_end,
                                                 "step": 120, "description": "Vigil demo: recommender"}))
    return out
