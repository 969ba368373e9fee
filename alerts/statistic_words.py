"""The drift and evidence statistics in the words a data scientist would use (alerts/wording.py's vocabulary)."""
from __future__ import annotations

# The drift statistics, named as a data scientist would say them.
STATISTIC_WORDS: dict[str, str] = {
    "psi": "population stability index (PSI)",
    "ks": "Kolmogorov-Smirnov distance (KS)",
    "wasserstein": "normalised Wasserstein distance",
    "js": "Jensen-Shannon distance",
    "chi2": "chi-squared statistic",
    "missing_rate": "share of missing values",
    "type_mismatch_share": "share of values of the wrong type",
    "nonfinite_share": "share of NaN or infinite values",
    "out_of_range_share": "share of values outside the reference range",
    "new_category_share": "share of categories never seen in the reference",
    "gpu_util_pct": "GPU utilisation",
    "fb_used_ratio": "GPU memory (framebuffer) used",
    "kv_cache_ratio": "vLLM KV-cache usage",
    "requests_waiting": "requests waiting in the vLLM queue",
    "error_origin_rate": "share of requests failing here first",
    "self_time_ms_p50": "median time spent in the service itself",
    "edge_time_ms_p50": "median call time",
    "range_ratio": "level against its normal range",
    "error_burst": "burst of error log lines",
}


def stat_words(statistic: str) -> str:
    """'population stability index (PSI)' for 'psi'; unknown names lose their underscores."""
    return STATISTIC_WORDS.get(statistic, (statistic or "value").replace("_", " "))
