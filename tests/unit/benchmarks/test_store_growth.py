"""`python -m benchmarks.store_growth` on a small run: with retention and compressed
reports the store stops growing with the days it keeps; without, it grows every day."""
from __future__ import annotations

import re

from benchmarks.store_growth import main


def test_retention_bounds_the_store_and_the_figures_are_printed(capsys):
    assert main(["--days", "6", "--samples-per-day", "300", "--samples-days", "2", "--reports-days", "2",
                 "--incident-every", "1", "--synthetic-report-kb", "300", "--quiet"]) == 0
    out = capsys.readouterr().out
    per_day = {label: float(v) for label, v in
               re.findall(r"^(0\.1\.0, keep everything|with retention):\s+[\d.]+ MB = ([\d.]+) MB per model-day",
                          out, re.MULTILINE)}
    assert per_day["with retention"] < per_day["0.1.0, keep everything"] / 2, out
    assert re.search(r"drift report: 0\.\d+ MB as HTML, 0\.\d+ MB gzip-compressed", out)
