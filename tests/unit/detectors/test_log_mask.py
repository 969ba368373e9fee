"""The mask that turns log lines into shapes: what it hides, and that the fast form
(a leading hex-digit lookahead) masks exactly what the plain alternation does."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from detectors.logs.shapes import _MASK

# The plain alternation the mask is a faster form of: the specification.
PLAIN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b"
    r"|\d+(?:[.:,/\-]\d+)*"
)
NEZHA_LOGS = Path(__file__).resolve().parents[4] / "shared" / "data" / "nezha" / "logs.parquet"

LINES = {
    "order 3f2a9c1e-77b0-4c1d-9e2f-0a1b2c3d4e5f paid": "order <*> paid",
    "trace deadbeef00c0ffee42 done": "trace <*> done",  # a long hex id with digits
    "codename deadbeefcafebabe stays": "codename deadbeefcafebabe stays",  # hex letters only: a word
    "from 10.0.3.17:8080 at 2023-01-29T08:43:04.123Z": "from <*> at <*>T<*>Z",
    "user42 retried 3 times in 1,250 ms": "user<*> retried <*> times in <*> ms",
    "abc1234567890xyz and ABCDEF123456": "abc<*>xyz and <*>",
    "": "",
}


@pytest.mark.parametrize("line", LINES)
def test_ids_numbers_and_times_are_masked_and_words_kept(line: str) -> None:
    assert _MASK.sub("<*>", line) == LINES[line] == PLAIN.sub("<*>", line)


@pytest.mark.skipif(not NEZHA_LOGS.exists(), reason="the shared Nezha data is not beside the repository")
def test_the_fast_mask_equals_the_plain_one_on_real_lines() -> None:
    lines = pd.read_parquet(NEZHA_LOGS, columns=["message"])["message"].head(20_000).tolist()
    assert [_MASK.sub("<*>", x) for x in lines] == [PLAIN.sub("<*>", x) for x in lines]
