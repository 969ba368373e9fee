"""The mask that turns log lines into shapes: what it hides, and that the fast form
(a leading hex-digit lookahead) masks exactly what the plain alternation does."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from detectors.logs.shapes import _LIST, _MASK

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


# The printed-collection pattern as first written: the specification of what is collapsed.
PLAIN_LIST = re.compile(r"\[[^\[\]()]*,[^\[\]()]*\]|\([^\[\]()]*,[^\[\]()]*\)")


def test_a_huge_line_with_an_unclosed_list_is_shaped_in_bounded_time() -> None:
    # Loki cuts lines at its max_line_size: a logged array of 60,000 values, truncated,
    # is a '[' with commas and no ']'. Each comma was retried to the end of the line
    # (quadratic: minutes per line), stalling the cycle; it must take well under a second.
    import subprocess
    import sys

    code = ("from detectors.logs.shapes import line_frame, shapes\n"
            "from detectors.records import LogRecord\n"
            "line = 'ERROR rejected batch [' + '\"ok\", ' * 60_000\n"
            "print(shapes(line_frame([LogRecord(1.0, 'api', line)]))['shape'].iloc[0][:40])\n")
    root = Path(__file__).resolve().parents[3]
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=10,
                              check=True)
    except subprocess.TimeoutExpired:
        pytest.fail("shaping one 360 KB line took over 10 s")
    assert done.stdout.startswith("ERROR rejected batch [")


@pytest.mark.parametrize("shape", [
    "got [a, b, c] and (x=1, y=2)", "unclosed [a, b, c", "nested [[a, b], [c, d]]", "(a, [b, c), d]",
    "[no comma] (none)", "[a,]", "[,]", "[a, b) and (c, d]", "tail [a, b, c]" + "]" * 3, ""])
def test_the_linear_list_pattern_collapses_exactly_what_the_plain_one_does(shape: str) -> None:
    assert _LIST.sub("<L>", shape) == PLAIN_LIST.sub("<L>", shape)


@pytest.mark.skipif(not NEZHA_LOGS.exists(), reason="the shared Nezha data is not beside the repository")
def test_the_linear_list_pattern_equals_the_plain_one_on_real_lines() -> None:
    lines = pd.read_parquet(NEZHA_LOGS, columns=["message"])["message"].head(20_000).tolist()
    masked = [_MASK.sub("<*>", x) for x in lines]
    assert [_LIST.sub("<L>", x) for x in masked] == [PLAIN_LIST.sub("<L>", x) for x in masked]
