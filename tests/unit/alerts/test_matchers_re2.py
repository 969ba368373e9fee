"""Matcher regexes are RE2's, as Alertmanager's (Go's regexp): linear in the label's length,
with RE2's syntax and meanings; a silence stored in Python's syntax by an older Vigil is
still matched, by Python's engine under a time bound, and says so."""
from __future__ import annotations

import time

import pytest

from alerts import matchers
from alerts.matchers import MatcherError, matcher_from_stored, parse_matcher
from alerts.silences import Silence

LONG = "a" * 10_000  # a cause label far longer than any real one


@pytest.mark.timeout(20)
@pytest.mark.parametrize("regex", [r"(.*)*x", r"(\w|\w)*x", r"(a+)+b", r"([a-z_ ]+,?)+x"])
def test_a_regex_that_backtracks_in_python_matches_a_10000_char_label_at_once(regex):
    """Python's engine takes hours on these against a 40-character label; RE2 takes time
    linear in the label, so a silence or a rule holding one cannot stall a cycle."""
    m = parse_matcher(f'cause=~"{regex}"')
    start = time.perf_counter()
    assert not m.matches({"cause": LONG})
    assert parse_matcher(f'cause!~"{regex}"').matches({"cause": LONG})
    assert parse_matcher(r'cause=~"(.*)*a"').matches({"cause": LONG})
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("regex, said", [(r"(a)\1", "invalid escape sequence: \\1"),
                                         (r"(?!canary).*", "invalid perl operator: (?!"),
                                         (r"a++", "bad repetition operator: ++"),
                                         (r"(?>a)", "invalid perl operator: (?>"),
                                         (r"a\C", "\\C (any byte) is not supported")])
def test_python_only_syntax_is_refused_naming_the_matcher_and_what_re2_said(regex, said):
    with pytest.raises(MatcherError) as e:
        parse_matcher(f'model=~"{regex}"', "matchers[2]")
    assert e.value.field == "matchers[2]"
    assert "RE2 syntax, as Alertmanager" in e.value.reason and said in e.value.reason, e.value.reason


def test_re2_meanings_hold_as_in_alertmanager():
    """Go's `\\d`, `\\w`, `\\s` are ASCII (Python's are Unicode), flags may sit mid-regex, and
    `.` never matches a newline."""
    assert not parse_matcher(r'model=~"fraud-v\d+"').matches({"model": "fraud-v\u0663"})  # Arabic-Indic 3
    assert parse_matcher(r'model=~"fraud-v\d+"').matches({"model": "fraud-v3"})
    assert not parse_matcher(r'entity=~"\w+"').matches({"entity": "caf\u00e9"})
    assert parse_matcher(r'entity=~"\pL+"').matches({"entity": "caf\u00e9"})
    assert parse_matcher(r'model=~"fraud-(?i)V\d"').matches({"model": "fraud-v3"})
    assert not parse_matcher(r'model=~"fraud-(?i)V\d"').matches({"model": "FRAUD-v3"})
    assert not parse_matcher(r'entity=~"a.b"').matches({"entity": "a\nb"})
    assert parse_matcher(r'entity=~"(?s)a.b"').matches({"entity": "a\nb"})
    assert not parse_matcher(r'entity=~"ab"').matches({"entity": "ab\n"})  # `$` is the end, not before a newline


def test_a_label_value_that_is_not_utf8_is_read_as_go_reads_it_not_a_crash():
    """A lone surrogate (a JSON `\\ud800` in a source's label) is no UTF-8: it reads as U+FFFD."""
    assert parse_matcher(r'entity=~"a.b"').matches({"entity": "a\ud800b"})
    with pytest.raises(MatcherError, match="lone surrogate"):
        parse_matcher('entity=~"a\ud800"', "matchers[0]")


def stored(value: str, **more) -> dict:
    return {"name": "model", "value": value, "isRegex": True, "isEqual": True, **more}


def test_a_stored_python_only_regex_still_mutes_as_made_and_says_so():
    """A silence made by an older Vigil in Python's syntax: refusing it failed every cycle,
    dropping it paged the people who silenced; it mutes as before and lists the problem."""
    m = matcher_from_stored(stored(r"(?!canary-).*"))
    silence = Silence(7, (matcher_from_stored(stored("recommender", isRegex=False)), m), 0.0, 1e12, "olga", "OPS-1")
    assert Silence(7, (m,), 0.0, 1e12, "olga", "OPS-1").mutes({"model": "recommender"}, 10.0)
    assert not Silence(7, (m,), 0.0, 1e12, "olga", "OPS-1").mutes({"model": "canary-ranker"}, 10.0)
    assert not matcher_from_stored(stored(r"(?!canary-).*", isEqual=False)).matches({"model": "recommender"})
    problem = silence.to_api(10.0)["problem"]
    assert problem.startswith("matchers[1]: ") and "RE2 syntax, as Alertmanager" in problem
    assert "Python's engine" in problem and "make it again in RE2 syntax" in problem
    assert silence.to_api(10.0)["matchers"][1]["value"] == r"(?!canary-).*"
    assert Silence(8, (parse_matcher('model="x"'),), 0.0, 1e12, "olga", "OPS-1").to_api(10.0)["problem"] is None


@pytest.mark.timeout(20)
def test_a_stored_python_only_regex_that_backtracks_gives_up_once_and_mutes_nothing(monkeypatch):
    """Python's engine is bounded: a match that takes longer makes the matcher hold for no
    alert from then on, a page rather than hours of every cycle or a silent all-clear."""
    monkeypatch.setattr(matchers, "_GAVE_UP", set())
    for op in (True, False):  # =~ and !~ alike: the silence mutes nothing
        m = matcher_from_stored(stored(r"(?=a)(a|aa)*[bc]", isEqual=op))
        start = time.perf_counter()
        assert not m.matches({"model": "a" * 40})
        assert not m.matches({"model": "b"})  # gave up: no more tries
        assert time.perf_counter() - start < 2.0
        assert "holds for no alert" in (m.problem or "")


def test_a_stored_matcher_with_a_bad_name_is_still_an_error():
    with pytest.raises(MatcherError, match=r"matcher.name"):
        matcher_from_stored({"name": "1bad", "value": "(?!x)", "isRegex": True})


@pytest.mark.timeout(60)
def test_a_regex_matcher_on_the_labels_every_cycle_sees_costs_about_what_an_equality_does():
    """The RE2 wrapper costs about 3 us a match (Python's re: 0.4 us); every cycle matches the
    same models, severities and kinds against the same silences and rules, so RE2 made the
    silence checks of 200 incidents against 10 regex silences 3 times slower (142 ms against
    48 ms). Compared with an equality matcher in the same run, so a loaded machine slows both."""
    regex_m, equal_m = parse_matcher(r'model=~"recomm.*|fraud-v\d+"'), parse_matcher('model="recommender"')
    labels = [{"model": f"recommender-{i % 50}"} for i in range(20_000)]

    def best(m) -> float:
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            for one in labels:
                m.matches(one)
            runs.append(time.perf_counter() - start)
        return min(runs)

    assert best(regex_m) < 3 * best(equal_m)


def test_a_backslash_c_quoted_or_escaped_is_text_as_in_go_and_only_the_bare_one_is_refused():
    """`\\C` (any byte) is C++ RE2's and Go refuses it; inside `\\Q...\\E` or after an escaped
    backslash it is plain text, which Go (and so Alertmanager) takes."""
    assert parse_matcher(r'path=~"\Qa\C\E"').matches({"path": "a\\C"})
    assert parse_matcher(r'path=~"a\\\\C"').matches({"path": "a\\C"})
    for bare in (r'path=~"\C"', r'path=~"\Qa\Eb\C"', r'path=~"\\\\\C"'):
        with pytest.raises(MatcherError, match="any byte"):
            parse_matcher(bare)


@pytest.mark.timeout(60)
def test_a_stored_regex_too_large_for_re2_costs_its_refusal_once_not_every_cycle():
    """Every cycle reads the live silences again; a stored Python regex RE2 refuses as too
    large (`(?i)\\pL{1000}`, 0.5 s to refuse, twice) cost that on every read."""
    obj = stored(r"(?i)\pL{999}|x")
    start = time.perf_counter()
    first = matcher_from_stored(obj)
    once = time.perf_counter() - start
    assert "pattern too large" in (first.problem or "")
    start = time.perf_counter()
    for _ in range(5):
        again = matcher_from_stored(obj)
    assert time.perf_counter() - start < once / 5, once
    assert again.matches({"model": "x"})
